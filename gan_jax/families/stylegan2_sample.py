"""`gan-jax-sample` for StyleGAN2 runs: samples with truncation ψ, the style-mixing grid and latent interpolation
strips, as the reference's `generate.py` and `style_mixing.py` draw them (G_ema; one z per seed, from
`jax.random.PRNGKey(seed)`).

* `mode=samples`: n images (seed, seed + 1, ...), truncated towards w_avg by `truncation_psi` for layers below
  `truncation_cutoff`.
* `mode=style_mixing`: a grid whose top row holds the column seeds' images and left column the row seeds'; cell
  (r, c) takes row r's ws with the layers `col_styles` replaced by column c's (the reference's default 0-6,
  the coarse styles, clipped to the generator's layers).
* `mode=interpolation`: one strip per pair of consecutive `interp_seeds`, `interp_frames` images lerping w.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config
from gan_jax.errors import ConfigError

Array = jax.Array
MODES = ("samples", "style_mixing", "interpolation")
NOISE_MODES = ("random", "const", "none")


def seed_latents(family: Any, seeds: list[int]) -> Array:
    """One z per seed: the seed's own key, so an image is fixed by its seed whatever else is drawn."""
    return jnp.stack([jax.random.normal(jax.random.PRNGKey(s), (family.z_dim,), jnp.float32) for s in seeds])


def _condition(family: Any, sample_cfg: Any, n: int) -> Array | None:
    if not family.class_conditional:
        return None
    label = sample_cfg.label if sample_cfg.label is not None else 0
    if not isinstance(label, int) or not 0 <= label < family.num_classes:
        raise ConfigError(f"label={label!r}: this StyleGAN2 run has classes 0..{family.num_classes - 1}; pass one")
    return family.condition(jnp.full((n,), label, jnp.int32))


def mapped(family: Any, state: Any, z: Array, c: Array | None, psi: float, cutoff: int | None) -> Array:
    g, net = family.generator, state.nets["G"]
    variables = {"params": net.sampling_params, "stats": net.stats}
    return g.apply(variables, z, c, truncation_psi=psi, truncation_cutoff=cutoff, method=g.mapping)


def seed_ws(family: Any, state: Any, sample_cfg: Any, c_fn: Any, seeds: list[int]) -> Array:
    """The seeds' ws, truncated as the sample config says."""
    z, c = seed_latents(family, seeds), c_fn(len(seeds))
    return mapped(family, state, z, c, sample_cfg.truncation_psi, sample_cfg.truncation_cutoff)


def synthesized(family: Any, state: Any, ws: Array, noise_mode: str, key: Array) -> np.ndarray:
    """uint8 images of G_ema's synthesis at ws, in batches of 64."""
    from gan_jax.data.images import to_uint8

    g, net = family.generator, state.nets["G"]
    variables = {"params": net.sampling_params, "stats": net.stats}
    fn = jax.jit(lambda w, k: g.apply(variables, w, noise_mode=noise_mode, method=g.synthesis, rngs={"noise": k}))
    parts = [fn(ws[i : i + 64], jax.random.fold_in(key, i)) for i in range(0, len(ws), 64)]
    return to_uint8(np.asarray(jnp.concatenate(parts)))


def style_mixing_grid(family: Any, state: Any, sample_cfg: Any, c_fn: Any) -> tuple[np.ndarray, int]:
    """(rows + 1) x (cols + 1) tiles, row-major, a blank corner; returns the tiles and the row length."""
    rows, cols = list(sample_cfg.row_seeds), list(sample_cfg.col_seeds)
    styles = [s for s in (sample_cfg.col_styles or range(7)) if 0 <= s < family.num_ws]
    w_rows, w_cols = (seed_ws(family, state, sample_cfg, c_fn, seeds) for seeds in (rows, cols))
    layer = np.zeros(family.num_ws, bool)
    layer[styles] = True
    mixed = jnp.where(layer[None, None, :, None], w_cols[None, :], w_rows[:, None])  # [rows, cols, num_ws, w]
    ws = jnp.concatenate([w_cols, w_rows, mixed.reshape(-1, *w_rows.shape[1:])])
    images = synthesized(family, state, ws, sample_cfg.noise_mode, jax.random.PRNGKey(sample_cfg.seed))
    col_imgs, row_imgs, cells = (
        images[: len(cols)],
        images[len(cols) : len(cols) + len(rows)],
        images[-len(rows) * len(cols) :],
    )
    blank = np.full_like(images[:1], 255)
    tiles = [blank, col_imgs]
    for r in range(len(rows)):
        tiles += [row_imgs[r : r + 1], cells[r * len(cols) : (r + 1) * len(cols)]]
    return np.concatenate(tiles), len(cols) + 1


def interpolation_strips(family: Any, state: Any, sample_cfg: Any, c_fn: Any) -> tuple[np.ndarray, int]:
    """One row per consecutive pair of seeds: interp_frames images from the first's w to the second's."""
    seeds, frames = list(sample_cfg.interp_seeds), sample_cfg.interp_frames
    if len(seeds) < 2 or frames < 2:
        raise ConfigError("mode=interpolation needs interp_seeds with at least 2 seeds and interp_frames >= 2")
    ws = seed_ws(family, state, sample_cfg, c_fn, seeds)
    t = jnp.linspace(0.0, 1.0, frames)[None, :, None, None]
    strips = ws[:-1, None] + (ws[1:, None] - ws[:-1, None]) * t  # [pairs, frames, num_ws, w]
    images = synthesized(
        family, state, strips.reshape(-1, *ws.shape[1:]), sample_cfg.noise_mode, jax.random.PRNGKey(sample_cfg.seed)
    )
    return images, frames


def plain_samples(family: Any, state: Any, sample_cfg: Any, c_fn: Any) -> tuple[np.ndarray, int | None]:
    seeds = list(range(sample_cfg.seed, sample_cfg.seed + sample_cfg.n))
    ws = seed_ws(family, state, sample_cfg, c_fn, seeds)
    return synthesized(family, state, ws, sample_cfg.noise_mode, jax.random.PRNGKey(sample_cfg.seed)), None


def check_sample_config(sample_cfg: Any) -> None:
    if sample_cfg.mode not in MODES:
        raise ConfigError(
            f"mode={sample_cfg.mode!r} is not a StyleGAN2 sampling mode; choose one of {', '.join(MODES)}"
        )
    if sample_cfg.noise_mode not in NOISE_MODES:
        raise ConfigError(f"noise_mode={sample_cfg.noise_mode!r}: choose one of {', '.join(NOISE_MODES)}")
    if not 0.0 <= sample_cfg.truncation_psi <= 2.0:
        raise ConfigError(f"truncation_psi={sample_cfg.truncation_psi} must be in [0, 2] (1: no truncation)")


def write_samples(family: Any, sample_cfg: Any, run: Config, state: Any) -> Path:
    """`out` (.npz: uint8 images, the seeds' mode) and a PNG grid beside it."""
    from gan_jax import plots

    check_sample_config(sample_cfg)
    draw = {"samples": plain_samples, "style_mixing": style_mixing_grid, "interpolation": interpolation_strips}
    images, per_row = draw[sample_cfg.mode](family, state, sample_cfg, lambda n: _condition(family, sample_cfg, n))
    out = Path(sample_cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    caption = f"{run.name} step {int(state.step)} {sample_cfg.mode} psi={sample_cfg.truncation_psi:g}"
    plots.save_image_grid(images, png, nrow=per_row, caption=caption)
    np.savez(out, samples=images, step=int(state.step), mode=sample_cfg.mode)
    print(f"wrote {out} ({len(images)} images, {sample_cfg.mode}, step {int(state.step)}) and {png}")
    return out
