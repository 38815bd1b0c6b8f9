"""`gan-jax-sample run_dir=DIR n=N seed=S out=FILE.npz [checkpoint=latest|best|STEP] [member=I] [label=K|[K,..]]`:
samples from a run (`member=I`: member I of a population run; `label=`: classes of a class-conditional run);
run_dir may also be a checkpoint's own path, DIR/checkpoints/N or DIR/checkpoints/best.
Translation runs (family=cyclegan): `direction=a2b|b2a input=test|train|FILE.npz|DIR` writes the translations of
n images and a grid whose rows are input | translation | reconstruction.
Table runs write a CSV (`out=FILE.csv`), optionally with every row conditioned on one category:
`condition.column=sex condition.value=Female`."""

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
    if obj.label is not None:
        labels = obj.label if isinstance(obj.label, list) else [obj.label]
        if not labels or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in labels):
            raise ConfigError(f"label={obj.label!r} must be a class index k >= 0 or a list of them, e.g. label=[0,3]")
        obj.label = labels
    return obj


def class_labels(cfg: SampleConfig, num_classes: int | None, run_name: str) -> list[int] | None:
    """The class of every sample: cfg.n per requested class, or cycling through all classes; None if unconditional."""
    if num_classes is None:
        if cfg.label is not None:
            raise ConfigError(f"label= applies to class-conditional runs (model.conditioning); {run_name} is not one")
        return None
    if cfg.label is None:
        return [i % num_classes for i in range(cfg.n)]
    bad = [k for k in cfg.label if k >= num_classes]
    if bad:
        raise ConfigError(f"label={bad} out of range: {run_name} has classes 0..{num_classes - 1}")
    return [k for k in cfg.label for _ in range(cfg.n)]


def sample_run(cfg: SampleConfig) -> Path:
    """Writes `samples` (images: uint8 NHWC; 2-D data: float32) to cfg.out and a PNG beside it."""
    import jax
    import numpy as np

    from gan_jax import plots
    from gan_jax.data.images import to_uint8
    from gan_jax.train.runs import restore_run
    from gan_jax.train.step import sample_generator

    run, source, family, state = restore_run(cfg.run_dir, cfg.checkpoint, cfg.member, need_data=False)
    if hasattr(family, "write_samples"):  # a family that writes its own outputs (translations: family=cyclegan)
        return family.write_samples(cfg, run, source, state)
    if source.kind == "table":
        return sample_table(cfg, source, family, state)
    if cfg.condition.column is not None:
        raise ConfigError("condition.column applies to table runs (data=csv); this run trained on " + source.name)
    num_classes = getattr(family, "num_classes", None) if getattr(family, "class_conditional", False) else None
    labels = class_labels(cfg, num_classes, run.name)
    batch = min(cfg.n, 500)
    fn = family.sampler(batch)
    n = cfg.n if labels is None else len(labels)
    samples = np.asarray(sample_generator(fn, state, jax.random.PRNGKey(cfg.seed), n, labels, batch))
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    extra = {} if labels is None else {"labels": np.asarray(labels, np.int32)}
    if source.kind == "images" and labels is not None:
        samples = to_uint8(samples)
        plots.save_class_grid(samples, np.asarray(labels), png, max_images=max(100, 10 * len(set(labels))))
    elif source.kind == "images":
        samples = to_uint8(samples)
        plots.save_image_grid(samples, png)
    else:
        real = np.asarray(source.sample(source.arrays, jax.random.PRNGKey(cfg.seed), cfg.n)["x"])
        plots.plot_samples_2d(samples, real, png, means=source.info.get("means"), title=f"{run.name} samples")
    np.savez(out, samples=samples, step=int(state.step), **extra)
    print(f"wrote {out} ({samples.shape[0]} samples, step {int(state.step)}) and {png}")
    return out


def sample_table(cfg: SampleConfig, source, family, state) -> Path:
    """n rows in the training table's header, dtypes and categories, as CSV (needs only the run directory)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from gan_jax.data.table_io import write_table
    from gan_jax.train.step import sample_generator

    out = Path("samples.csv" if cfg.out == SampleConfig.out else cfg.out)
    if out.suffix.lower() not in (".csv", ".tsv"):
        raise ConfigError(f"out={cfg.out}: a table run writes rows as CSV; pass out=FILE.csv")
    transformer = source.info["transformer"]
    index = -1
    if cfg.condition.column is not None:
        index = transformer.cond_index(cfg.condition.column, cfg.condition.value)
    elif cfg.condition.value is not None:
        raise ConfigError("condition.value needs condition.column=<categorical column>")
    fn = family.sampler(min(cfg.n, 500))
    cond_arrays, index_arr = source.arrays["cond"], jnp.asarray(index)

    def draw(key: jax.Array, n: int):
        rows = sample_generator(lambda st, k: fn(st, k, cond_arrays, index_arr), state, key, n)
        return transformer.inverse_transform(np.asarray(rows))

    key = jax.random.PRNGKey(cfg.seed)
    table = draw(key, cfg.n) if index < 0 or not cfg.condition.reject else _rejection_sample(draw, key, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, out)
    print(f"wrote {out} ({len(table)} rows, step {int(state.step)})")
    return out


def _rejection_sample(draw, key, cfg: SampleConfig):
    """Rows drawn n at a time with the condition vector set, kept where the column has the value."""
    import jax
    import pandas as pd

    column, value = cfg.condition.column, cfg.condition.value
    kept, drawn = [], 0
    for attempt in range(cfg.condition.max_draws):
        chunk = draw(jax.random.fold_in(key, attempt), cfg.n)
        drawn += len(chunk)
        have = chunk[column].isna() if value is None else chunk[column].astype(str) == str(value)
        kept.append(chunk[have.to_numpy()])
        if sum(map(len, kept)) >= cfg.n:
            return pd.concat(kept, ignore_index=True).iloc[: cfg.n]
    got = sum(map(len, kept))
    raise ConfigError(
        f"only {got} of {drawn} rows drawn with the condition {column}={value!r} have that value "
        f"(acceptance {got / drawn:.2%}); train longer, raise condition.max_draws, or pass "
        "condition.reject=false to keep every row drawn with the condition vector"
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="sample")
def _app(dcfg: DictConfig) -> None:
    run_reporting_errors(PROG, lambda: sample_run(to_sample_config(dcfg)))


def main() -> None:
    precheck(PROG, "sample", to_sample_config)
    _app()


if __name__ == "__main__":
    main()
