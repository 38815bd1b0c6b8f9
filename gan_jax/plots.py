"""Figures for runs and papers: loss curves, 2-D sample scatters, image grids, mode histograms, and for tables
per-column real-vs-synthetic histograms and the difference of their pairwise associations.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas) rather than pyplot: nothing can open a
window or change the global backend, and figures are freed with their object instead of piling up in pyplot's
registry during long runs.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:  # tables only (the [tabular] extra): image and 2-D runs never import pandas
    import pandas as pd

MIN_GRID_WIDTH = 256  # px: tiny images (8×8 digits) are upscaled so a grid is readable when opened
GRID_PAD_VALUE = 255  # white separators: visible between tiles of dark-background datasets such as MNIST


CAPTION_FONT_PX = 12  # grid captions: readable on the 256 px minimum grid width
MARKER_BELOW = 30  # curves with fewer points than this get markers: a short run's few logs stay visible


def plot_losses(records: Sequence[Mapping], out_png: str | Path, title: str = "", metrics: Sequence[str] = ()) -> None:
    """Plot d_loss/g_loss against step, mean D outputs (d_real/d_fake) when logged, and one panel per evaluation
    metric in `metrics` (e.g. reverse_kl, fid) over the evaluation steps. `title`: run name and step.

    ``records`` are metrics.jsonl records (``gan_jax.logging.read_metrics``); missing keys are skipped and NaN
    values (a diverged run) show as gaps.
    """
    panels = [("loss", ("d_loss", "g_loss")), ("mean D output", ("d_real", "d_fake"))]
    panels += [(name, (name,)) for name in metrics]
    series = [(label, {key: _series(records, key) for key in keys}) for label, keys in panels]
    series = [(label, curves) for label, curves in series if any(len(steps) for steps, _ in curves.values())]
    fig = Figure(figsize=(7, 2.6 * max(len(series), 1) + 0.4), layout="constrained")
    if title:
        fig.suptitle(title, fontsize=10)
    if not series:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no loss values logged", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    for index, (label, curves) in enumerate(series):
        ax = fig.add_subplot(len(series), 1, index + 1)
        for key, (steps, values) in curves.items():
            if steps:
                ax.plot(steps, values, label=key, linewidth=1, marker="o" if len(steps) < MARKER_BELOW else None)
        ax.set_ylabel(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, out_png)


def plot_samples_2d(
    samples: np.ndarray,
    real: np.ndarray,
    out_png: str | Path,
    means: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Scatter generated samples over real data (equal aspect, so mode spacing is not distorted)."""
    samples, real = _points(samples, "samples"), _points(real, "real")
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:blue", alpha=0.3, linewidths=0, label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:orange", alpha=0.6, linewidths=0, label="generated")
    if means is not None:
        means = _points(means, "means")
        ax.scatter(means[:, 0], means[:, 1], s=40, c="black", marker="x", label="mode centers")
    ax.set_aspect("equal")
    legend = ax.legend(loc="best")
    for handle in legend.legend_handles:  # legend markers at a readable size, whatever the plotted size
        handle.set_sizes([20])
    if title:
        ax.set_title(textwrap.fill(title, 50), fontsize=9)
    _save(fig, out_png)


def plot_mode_histogram(counts: Sequence[int], out_png: str | Path, title: str = "") -> None:
    """Bar chart of samples per mode with counts on the bars; dropped modes (0 samples) get red labels."""
    counts = np.asarray(counts)
    fig = Figure(figsize=(min(max(4, 0.3 * len(counts) + 2), 20), 3), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(counts)), counts, color="tab:blue")
    for label, count in zip(ax.bar_label(bars, fontsize=7), counts, strict=True):
        if count == 0:
            label.set_color("tab:red")
    ax.set_xticks(np.arange(len(counts)))
    ax.set_xlabel("mode")
    ax.set_ylabel("samples")
    if title:
        ax.set_title(textwrap.fill(title, 60), fontsize=9)  # fits the figure: long run names wrap
    _save(fig, out_png)


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 NHWC images into one (H, W, C) uint8 array, ``nrow`` images per row (default: near-square).

    Size: ``rows * (h + padding) + padding`` by ``nrow * (w + padding) + padding``; tile ``i`` sits at row
    ``i // nrow``, column ``i % nrow``. Only uint8 is accepted: casting [-1, 1] floats gives black images.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"image_grid needs uint8 images shaped (N, H, W, C), got {images.dtype} {images.shape}; "
            "map [-1, 1] floats with ((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8)"
        )
    count, height, width, channels = images.shape
    ncol = nrow or math.ceil(math.sqrt(count))
    rows = math.ceil(count / ncol)
    grid = np.full(
        (rows * (height + padding) + padding, ncol * (width + padding) + padding, channels),
        GRID_PAD_VALUE,
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        top = padding + (index // ncol) * (height + padding)
        left = padding + (index % ncol) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_image_grid(images: np.ndarray, out_png: str | Path, nrow: int | None = None, caption: str = "") -> None:
    """Save ``image_grid(images, nrow)`` as a PNG, grayscale for 1 channel, upscaled to >= 256 px wide, with
    ``caption`` (run name and step) in a white band above the tiles so a copied grid still says what it shows."""
    grid = image_grid(images, nrow)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    scale = math.ceil(MIN_GRID_WIDTH / picture.width)
    if scale > 1:  # nearest-neighbour keeps pixel edges sharp; smoothing would invent detail
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    if caption:
        picture = _with_caption(picture, caption)
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def _with_caption(picture: Image.Image, caption: str) -> Image.Image:
    """``picture`` below a white band holding ``caption`` (wrapped to the width, PIL's bundled font)."""
    font = ImageFont.load_default(size=CAPTION_FONT_PX)
    chars_per_line = max(8, picture.width // (CAPTION_FONT_PX * 6 // 10))
    lines = textwrap.wrap(caption, chars_per_line) or [""]
    band = len(lines) * (CAPTION_FONT_PX + 3) + 4
    white, black = (GRID_PAD_VALUE,) * len(picture.getbands()), (0,) * len(picture.getbands())
    canvas = Image.new(picture.mode, (picture.width, picture.height + band), white)
    canvas.paste(picture, (0, band))
    ImageDraw.Draw(canvas).multiline_text((3, 2), "\n".join(lines), fill=black, font=font, spacing=3)
    return canvas


def save_class_grid(
    images: np.ndarray, labels: np.ndarray, out_png: str | Path, max_images: int = 100, caption: str = ""
) -> None:
    """A class-conditional sample grid: one row per class (in label order), the same number of samples in each."""
    classes = np.unique(labels)
    per_row = max(1, min(max_images // len(classes), min(int(np.sum(labels == k)) for k in classes)))
    rows = [images[np.flatnonzero(labels == k)[:per_row]] for k in classes]
    save_image_grid(np.concatenate(rows), out_png, nrow=per_row, caption=caption)


def plot_table_columns(
    real: pd.DataFrame, synth: pd.DataFrame, out_png: str | Path, title: str = "", max_categories: int = 12
) -> None:
    """One panel per column: real and synthetic histograms on shared bins (numeric) or category frequencies
    (the real data's `max_categories` most frequent categories, the rest pooled as "other")."""
    import pandas as pd

    columns = list(real.columns)
    ncols = min(4, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig = Figure(figsize=(4 * ncols, 2.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, name in zip(axes, columns, strict=False):
        r, s = real[name], synth[name]
        if pd.api.types.is_numeric_dtype(r) and not pd.api.types.is_bool_dtype(r) and r.nunique() > max_categories:
            rv, sv = r.dropna().to_numpy(np.float64), pd.to_numeric(s, errors="coerce").dropna().to_numpy(np.float64)
            bins = np.histogram_bin_edges(rv, bins=40)
            ax.hist(rv, bins=bins, density=True, alpha=0.5, label="real")
            ax.hist(np.clip(sv, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5, label="synthetic")
        else:
            rt, st = r.astype(str), s.astype(str)
            top = list(rt.value_counts().index[:max_categories])
            pooled = [(rt.where(rt.isin(top), "other")), (st.where(st.isin(top), "other"))]
            labels = top + (["other"] if any((p == "other").any() for p in pooled) else [])
            freq = [p.value_counts(normalize=True).reindex(labels, fill_value=0.0) for p in pooled]
            pos = np.arange(len(labels))
            ax.bar(pos - 0.2, freq[0].to_numpy(), width=0.4, label="real")
            ax.bar(pos + 0.2, freq[1].to_numpy(), width=0.4, label="synthetic")
            ax.set_xticks(pos, [str(v)[:12] for v in labels], rotation=60, ha="right", fontsize=6)
        ax.set_title(str(name), fontsize=9)
    for ax in axes[len(columns) :]:
        ax.set_axis_off()
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    _save(fig, out_png)


def plot_correlation_difference(
    real: pd.DataFrame, synth: pd.DataFrame, out_png: str | Path, kinds: Mapping | None = None, title: str = ""
) -> None:
    """Three heat maps: pairwise associations of the real table, of the synthetic one, and |real - synthetic|
    (Pearson / correlation ratio / Cramer's V, see `metrics.tabular.association_matrix`)."""
    from gan_jax.metrics.tabular import association_matrix, resolve_kinds

    kinds = dict(kinds) if kinds is not None else resolve_kinds(real)
    a_real, a_synth = association_matrix(real, kinds), association_matrix(synth[list(real.columns)], kinds)
    panels = [
        ("real", a_real, (-1, 1)),
        ("synthetic", a_synth, (-1, 1)),
        ("|difference|", (a_real - a_synth).abs(), (0, 1)),
    ]
    fig = Figure(figsize=(16, 5.5), layout="constrained")
    names = [str(c) for c in a_real.columns]
    for ax, (label, matrix, (lo, hi)) in zip(fig.subplots(1, 3), panels, strict=True):
        image = ax.imshow(matrix.to_numpy(np.float64), vmin=lo, vmax=hi, cmap="RdBu_r" if lo < 0 else "magma")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_title(label)
        fig.colorbar(image, ax=ax, shrink=0.7)
    if title:
        fig.suptitle(title)
    _save(fig, out_png)


def _series(records: Sequence[Mapping], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key``; float() also parses the "NaN"/"Infinity" markers of raw jsonl lines."""
    pairs = [(float(r["step"]), float(r[key])) for r in records if r.get(key) is not None and "step" in r]
    return [step for step, _ in pairs], [value for _, value in pairs]


def _points(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"plot_samples_2d needs {name} shaped (N, 2), got {array.shape}")
    return array


def _save(fig: Figure, out_png: str | Path) -> None:
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
