#!/usr/bin/env bash
# The accelerator check in one call: installs what the GPU machine lacks from a folder of wheels made beforehand
# by scripts/device_wheels.sh (no network there), then runs scripts/device_check.py, which writes ONE JSON file.
#
#     bash scripts/device_check.sh [--dry-run] [--out FILE] [--wheels DIR] [--install-only] [device_check.py args]
#
# --wheels DIR   the wheel folder (default wheels/ in the repo); only packages that do not import already are
#                installed: hydra-core, omegaconf and antlr4 are required, wandb and tensorboardX optional (the
#                benchmarks never import them, so a failed install there only warns)
# --out FILE     the JSON (default $OUT/device_check.json when $OUT is set, else device_check.json)
# --dry-run      tiny sizes on the CPU (see scripts/device_check.py); other arguments go to device_check.py
# The project itself is not installed: the repo root goes on PYTHONPATH. $PYTHON picks the interpreter (python3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
WHEELS=$ROOT/wheels
INSTALL_ONLY=0
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS=$2; shift 2 ;;
        --wheels=*) WHEELS=${1#--wheels=}; shift ;;
        --install-only) INSTALL_ONLY=1; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

missing() {  # the requirements of "module=requirement ..." whose module Python cannot find (one process)
    "$PY" - "$@" <<'PYEOF'
import importlib.util, sys
for pair in sys.argv[1:]:
    module, requirement = pair.split("=", 1)
    if importlib.util.find_spec(module) is None:
        print(requirement)
PYEOF
}

install() {  # install REQUIRED|OPTIONAL requirement...
    local kind=$1; shift
    [ $# -eq 0 ] && return 0
    if [ ! -d "$WHEELS" ]; then
        echo "device_check.sh: $kind packages missing ($*) and no wheel folder $WHEELS (scripts/device_wheels.sh)" >&2
        return 1
    fi
    echo "device_check.sh: installing $* from $WHEELS" >&2
    # from / with the repo off PYTHONPATH: pip would take the checkout's gan_jax.egg-info for an installed gan_jax
    if (cd / && PYTHONPATH=$BASE_PYTHONPATH "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
        --no-cache-dir --disable-pip-version-check "$@"); then
        return 0
    fi
    # An environment pip may not write to: a target folder on PYTHONPATH instead (no dependency resolution
    # against what is installed there, so every wheel the requirements need must be in the folder).
    local site=${DEVICE_CHECK_SITE:-/tmp/device_check_site}
    echo "device_check.sh: retrying into $site" >&2
    (cd / && PYTHONPATH=$BASE_PYTHONPATH "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
        --no-cache-dir --disable-pip-version-check --target "$site" "$@") || return 1
    BASE_PYTHONPATH="$site${BASE_PYTHONPATH:+:$BASE_PYTHONPATH}"
}

BASE_PYTHONPATH=${PYTHONPATH:-}
case "$WHEELS" in /*) ;; *) WHEELS=$PWD/$WHEELS ;; esac
t0=$(date +%s)
required=$(missing hydra=hydra-core omegaconf=omegaconf antlr4=antlr4-python3-runtime)
optional=$(missing wandb=wandb tensorboardX=tensorboardX)
# shellcheck disable=SC2086  # word splitting of the requirement lists is intended
if ! install required $required; then
    echo "device_check.sh: error: cannot install the required packages; nothing measured" >&2
    exit 2
fi
# shellcheck disable=SC2086
install optional $optional || echo "device_check.sh: warning: optional packages not installed: $optional" >&2
echo "device_check.sh: packages ready in $(( $(date +%s) - t0 )) s" >&2
[ "$INSTALL_ONLY" = 1 ] && exit 0

export PYTHONPATH="$ROOT${BASE_PYTHONPATH:+:$BASE_PYTHONPATH}"
cd "$ROOT" && exec "$PY" scripts/device_check.py "${ARGS[@]}"
