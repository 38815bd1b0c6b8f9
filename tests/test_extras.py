"""Image and 2-D runs need none of the [tabular] extra (pandas, sdmetrics): a process in which those cannot be
imported trains an image GAN, samples and scores it, and `data=csv` there says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_TABULAR = """
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pandas", "sdmetrics"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""

IMAGE_RUN = """
import gan_jax
from gan_jax.cli.evaluate import evaluate_run
from gan_jax.config import EvalRunConfig
from gan_jax.errors import ConfigError
quick = ("train.steps=4", "train.batch_size=8", "model.width_scale=0.125", "train.steps_per_call=2",
         "train.log_every=2", "eval.every=4", "eval.num_samples=64", "logger=none", "logger.progress=false")
gan_jax.train(gan_jax.config("dcgan_digits", *quick), RUN)
assert gan_jax.load(RUN).sample(4).shape == (4, 32, 32, 1)
assert "classifier_fid" in evaluate_run(EvalRunConfig(run_dir=RUN, n=64))["values"]
try:
    gan_jax.config("tabular_adult", "train.steps=2")
    gan_jax.train(gan_jax.config("tabular_adult", "train.steps=2"), RUN + "-table")
except ConfigError as err:
    print("ERROR:", err)
assert "pandas" not in sys.modules and "sdmetrics" not in sys.modules
"""


def test_image_runs_need_no_tabular_extra(tmp_path):
    code = BLOCK_TABULAR + f"RUN = {str(tmp_path / 'run')!r}\n" + textwrap.dedent(IMAGE_RUN)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ERROR: data=csv needs the tabular extra (pandas is not installed): pip install 'gan_jax[tabular]'" in (
        proc.stdout
    ), proc.stdout[-2000:]
