"""A researcher's own config directory adds experiments without forking: `--config-dir DIR` (or `-cd DIR`) and
`hydra.searchpath=[file://DIR]`, with the same one-line errors as the package's own configs."""

from __future__ import annotations

import json

from test_cli import error_lines, run_cli

MY_RING = """# @package _global_
defaults:
  - override /data: ring
  - override /model: mlp_toy
name: my_ring
model:
  g_widths: [16]
  d_widths: [16]
train:
  steps: 20
  batch_size: 64
  steps_per_call: 10
  log_every: 10
  ckpt_every: 20
eval:
  every: 20
  num_samples: 200
logger:
  mode: disabled
  progress: false
"""


def _config_dir(tmp_path):
    experiments = tmp_path / "my_configs" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "my_ring.yaml").write_text(MY_RING)
    (experiments / "typo.yaml").write_text("# @package _global_\ntrain:\n  stepz: 20\n")
    return tmp_path / "my_configs"


def test_an_experiment_from_the_users_own_config_dir_trains(tmp_path):
    configs = _config_dir(tmp_path)
    proc = run_cli(
        "gan-jax-train", "--config-dir", str(configs), "experiment=my_ring", "hydra.run.dir=run", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["name"] == "my_ring" and summary["step"] == 20


def test_a_users_config_dir_gets_the_same_one_line_errors(tmp_path):
    configs = _config_dir(tmp_path)
    typo = run_cli("gan-jax-train", f"--config-dir={configs}", "experiment=my_rin", cwd=tmp_path)
    assert typo.returncode == 2 and len(error_lines(typo)) == 1, typo.stderr
    assert "experiment=my_rin is not a config option" in typo.stderr and "my_ring" in typo.stderr
    bad_key = run_cli("gan-jax-train", "-cd", str(configs), "experiment=typo", cwd=tmp_path)
    assert bad_key.returncode == 2 and len(error_lines(bad_key)) == 1, bad_key.stderr
    assert "experiment/typo: unknown config key 'train.stepz' (did you mean train.steps?)" in bad_key.stderr
    searchpath = f"hydra.searchpath=[file://{configs}]"
    override = run_cli("gan-jax-train", searchpath, "experiment=my_ring", "train.stepz=3", cwd=tmp_path)
    assert override.returncode == 2 and len(error_lines(override)) == 1, override.stderr
    assert "unknown config key 'train.stepz' (did you mean train.steps?)" in override.stderr
