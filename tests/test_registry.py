"""Registries: every name a config picks comes from one registry, whose names make the choices, the
`did you mean` hints and the errors; each model's own schema refuses keys it does not have."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import make_config

from gan_jax.errors import ConfigError
from gan_jax.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, Registry


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.name=mpl", "model.name='mpl' is not a known model (did you mean mlp?)"),
        ("loss.name=hinj", "loss.name='hinj' is not a known loss (did you mean hinge?)"),
        ("data.name=rnig", "data.name='rnig' is not a known dataset (did you mean ring?)"),
        ("optim.d.name=adma", "optim.d.name='adma' is not a known optimizer (did you mean adam?)"),
    ],
)
def test_unknown_names_come_from_the_registries(override, message):
    with pytest.raises(ConfigError) as err:
        make_config(override)
    assert message in str(err.value) and "choose one of:" in str(err.value)


def test_registries_hold_the_builtins():
    assert {"mlp", "dcgan", "radford", "resnet", "ctgan"} <= set(MODELS.names())
    assert {"ns", "minimax", "lsgan", "wgan", "wgan_gp", "hinge"} <= set(LOSSES.names())
    assert {"ring", "grid", "digits", "mnist", "fashion_mnist", "cifar10", "npz", "folder", "csv"} <= set(DATASETS)
    assert set(OPTIMIZERS.names()) == {"adam", "rmsprop", "sgd"}


def test_a_name_registered_twice_by_two_owners_is_refused():
    reg = Registry("thing", "thing.name")
    reg.register("a", len)
    reg.register("a", len)  # the same object again (a module imported twice): fine
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("a", max)


def test_each_model_refuses_keys_it_does_not_have():
    with pytest.raises(Exception, match="width_scale"):  # the MLP has no width_scale (DCGAN's key)
        make_config("model.width_scale=0.5")
    assert make_config("model=dcgan", "data=digits", "model.width_scale=0.5").model.width_scale == 0.5
    with pytest.raises(Exception, match="g_widths"):
        make_config("model=dcgan", "data=digits", "model.g_widths=[8]")


def test_cli_names_the_key_the_model_lacks_in_one_line(tmp_path):
    code = "import sys; from gan_jax.cli.train import main; sys.argv[0] = 'gan-jax-train'; main()"
    args = ["model=dcgan", "data=digits", "model.g_widths=[8]", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "unknown config key 'model.g_widths'" in line and "model.width_scale" in line  # DCGAN's own keys


def test_the_toy_mlp_on_images_is_refused_not_trained():
    with pytest.raises(ConfigError, match="holds images but the model is the MLP with a linear output"):
        make_config("data=digits")
    assert make_config("data=digits", "model.g_output=tanh").model.g_output == "tanh"


def test_a_plugin_image_metric_runs_in_the_image_evaluator():
    import numpy as np

    from gan_jax.data.images import load_digits
    from gan_jax.metrics.evaluator import ImageEvaluator
    from gan_jax.registry import METRICS

    def mean_gap(fake, real):
        return {"mean_gap": abs(float(fake.mean()) - float(real.mean()))}

    METRICS.register("mean_gap", mean_gap, kind="images")
    real = load_digits(8)
    evaluator = ImageEvaluator("digits", "all", real, ["mean_gap", "classes"])
    values, protocol = evaluator(real.x[:100])
    assert values["mean_gap"] == pytest.approx(abs(real.x[:100].mean() - real.x.mean()))
    assert "mean_gap" in protocol and "classifier" in protocol
    with pytest.raises(ConfigError, match=r"unknown image metric 'mean_gapp'.*mean_gap"):
        ImageEvaluator("digits", "all", real, ["mean_gapp"])
    assert np.isfinite(values["mean_gap"])
