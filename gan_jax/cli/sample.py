"""`gan-jax-sample run_dir=DIR n=N seed=S out=FILE.npz [checkpoint=latest|best|STEP] [member=I]`: samples from a
run (`member=I`: member I of a population run)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_jax.cli.common import CONFIG_DIR, precheck, run_reporting_errors
from gan_jax.config import SampleConfig
from gan_jax.errors import ConfigError

PROG = "gan-jax-sample"


def to_sample_config(dcfg: object) -> SampleConfig:
    try:
        obj = OmegaConf.to_object(dcfg)  # type: ignore[arg-type]
    except Exception as err:
        raise ConfigError("run_dir is required: gan-jax-sample run_dir=DIR n=N seed=S out=FILE.npz") from err
    if obj.n <= 0:
        raise ConfigError(f"n={obj.n} must be positive")
    if obj.checkpoint not in ("latest", "best") and not str(obj.checkpoint).isdigit():
        raise ConfigError(f"checkpoint={obj.checkpoint!r} must be latest, best or a step number")
    return obj


def sample_run(cfg: SampleConfig) -> Path:
    """Writes `samples` (images: uint8 NHWC; 2-D data: float32) to cfg.out and a PNG beside it."""
    import jax
    import numpy as np

    from gan_jax import plots
    from gan_jax.data.images import to_uint8
    from gan_jax.train.loop import restore_run
    from gan_jax.train.step import make_sample_fn, sample_generator

    run, source, gan, state = restore_run(cfg.run_dir, cfg.checkpoint, cfg.member)
    fn = make_sample_fn(gan, min(cfg.n, 500))
    samples = np.asarray(sample_generator(fn, state, jax.random.PRNGKey(cfg.seed), cfg.n))
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    if source.kind == "images":
        samples = to_uint8(samples)
        plots.save_image_grid(samples, png)
    else:
        real = np.asarray(source.sample(source.arrays, jax.random.PRNGKey(cfg.seed), cfg.n)["x"])
        plots.plot_samples_2d(samples, real, png, means=source.info.get("means"), title=f"{run.name} samples")
    np.savez(out, samples=samples, step=int(state.step))
    print(f"wrote {out} ({samples.shape[0]} samples, step {int(state.step)}) and {png}")
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="sample")
def _app(dcfg: DictConfig) -> None:
    run_reporting_errors(PROG, lambda: sample_run(to_sample_config(dcfg)))


def main() -> None:
    precheck(PROG, "sample", to_sample_config)
    _app()


if __name__ == "__main__":
    main()
