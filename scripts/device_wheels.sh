#!/usr/bin/env bash
# Downloads the wheels that scripts/device_check.sh installs on a GPU machine without network: hydra-core,
# omegaconf, antlr4-python3-runtime, wandb and tensorboardX with their dependencies, for CPython 3.12 on
# manylinux x86-64, into DIR (default wheels/, git-ignored).
#
#     bash scripts/device_wheels.sh [--minimal] [DIR]
#
# --minimal: only what the benchmarks import (hydra-core, omegaconf, antlr4 and their PyYAML and packaging: about
# 1.3 MB instead of about 27 MB, most of it wandb's 20 MB wheel); device_check.sh then warns that wandb and
# tensorboardX are missing, and measures all the same.
#
# What that machine already has is left out: jax/jaxlib and their CUDA plugins, flax, optax, orbax, torch and
# numpy (large, and carrying them would pass the device tool's 64 MiB limit). The dependency closure is resolved
# for the target platform with `pip install --dry-run --report`, then each wheel is fetched at its resolved
# version with `pip download --no-deps`. antlr4-python3-runtime 4.9.3 (omegaconf 2.3 needs 4.9.*) is published as
# a source archive only, so its (pure-Python) wheel is built here. Ends by printing the folder's size.
set -euo pipefail

MINIMAL=0
if [ "${1:-}" = --minimal ]; then MINIMAL=1; shift; fi
DIR=${1:-wheels}
PY=${PYTHON:-python3}
# The versions the project is tested with (README: Dependencies); change them together with pyproject.toml.
PINS=(hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3)
[ "$MINIMAL" = 1 ] || PINS+=(wandb==0.31.0 tensorboardX==2.6.5)
# Present on the GPU machine (the device README's package list), or too large to carry: never downloaded.
EXCLUDE='^(numpy|jax|jaxlib|jax-cuda.*|flax|optax|orbax.*|torch|torchvision|triton|nvidia-.*|scipy|ml-dtypes)$'
TARGET=(
    --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any
)

mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PY" -m pip wheel -q --no-deps -w "$DIR" antlr4-python3-runtime==4.9.3
"$PY" -m pip install -q --dry-run --ignore-installed --report "$tmp/report.json" --target "$tmp/target" \
    --find-links "$DIR" "${TARGET[@]}" "${PINS[@]}"
"$PY" - "$tmp/report.json" "$EXCLUDE" >"$tmp/requirements.txt" <<'EOF'
import json, re, sys

report, exclude = json.load(open(sys.argv[1])), re.compile(sys.argv[2], re.I)
for item in report["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if not exclude.match(name.replace("_", "-")):
        print(f"{name}=={version}")
EOF
"$PY" -m pip download -q --no-deps --find-links "$DIR" -d "$DIR" "${TARGET[@]}" -r "$tmp/requirements.txt"
printf '%s\n' "${PINS[@]}" >"$DIR/requirements.txt"
cp "$tmp/requirements.txt" "$DIR/resolved.txt"

echo "$(ls "$DIR"/*.whl | wc -l) wheels in $DIR: $(du -sh "$DIR" | cut -f1)"
size=$(du -sm "$DIR" | cut -f1)
if [ "$size" -gt 40 ]; then
    echo "warning: $DIR is ${size} MiB; with the working tree it must stay under the device tool's 64 MiB" >&2
fi
