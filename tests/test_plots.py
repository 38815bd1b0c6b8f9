"""Each figure function writes a readable PNG; image_grid places tiles where its docstring says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from gan_jax.plots import image_grid, plot_losses, plot_mode_histogram, plot_samples_2d, save_image_grid


def _open(path) -> Image.Image:
    with Image.open(path) as picture:
        picture.load()
        assert picture.format == "PNG"
        assert picture.width > 0 and picture.height > 0
        return picture


def test_plot_losses_with_and_without_d_outputs(tmp_path):
    full = [{"step": s, "d_loss": 1 / (s + 1), "g_loss": s, "d_real": 0.7, "d_fake": 0.3} for s in range(5)]
    partial = [{"step": 0, "g_loss": 1.0}, {"step": 1, "g_loss": math.nan}, {"step": 2, "g_loss": "NaN"}]
    plot_losses(full, tmp_path / "full.png")
    plot_losses(partial, tmp_path / "partial.png")
    plot_losses([], tmp_path / "sub" / "empty.png")
    two_panels, one_panel = _open(tmp_path / "full.png"), _open(tmp_path / "partial.png")
    assert two_panels.height > one_panel.height
    _open(tmp_path / "sub" / "empty.png")


def test_plot_losses_titles_and_evaluation_panels(tmp_path):
    """A title (run name and step) and one panel per evaluation metric, its few points drawn with markers."""
    records = [{"step": s, "d_loss": 1.0, "g_loss": 0.5} for s in range(0, 100, 10)]
    records += [{"step": 50, "reverse_kl": 0.3, "hq_fraction": 0.5}, {"step": 100, "reverse_kl": 0.1}]
    plot_losses(records, tmp_path / "plain.png")
    plot_losses(records, tmp_path / "evals.png", title="toy_ring (seed 0): step 100", metrics=["reverse_kl", "fid"])
    plain, evals = _open(tmp_path / "plain.png"), _open(tmp_path / "evals.png")
    assert evals.height > plain.height  # the reverse_kl panel was added; fid (never logged) was not


def test_plot_samples_2d(tmp_path):
    rng = np.random.default_rng(0)
    means = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]) * 2
    real = means[rng.integers(0, 8, 500)] + 0.05 * rng.standard_normal((500, 2))
    samples = rng.standard_normal((300, 2))
    plot_samples_2d(samples, real, tmp_path / "ring.png", means=means, title="ring of 8")
    plot_samples_2d(samples, real, tmp_path / "plain.png")
    _open(tmp_path / "ring.png")
    _open(tmp_path / "plain.png")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_samples_2d(samples[:, :1], real, tmp_path / "bad.png")


def test_plot_mode_histogram(tmp_path):
    plot_mode_histogram([30, 0, 25, 45, 0, 12, 8, 20], tmp_path / "modes.png", title="modes")
    _open(tmp_path / "modes.png")


def test_image_grid_shape_and_placement():
    images = np.arange(10 * 8 * 8, dtype=np.int64).reshape(10, 8, 8, 1).astype(np.uint8)
    grid = image_grid(images, nrow=5, padding=2)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * (8 + 2) + 2, 5 * (8 + 2) + 2, 1)  # 2 rows of 5 tiles
    np.testing.assert_array_equal(grid[2:10, 2:10], images[0])
    np.testing.assert_array_equal(grid[2:10, 12:20], images[1])  # next column
    np.testing.assert_array_equal(grid[12:20, 2:10], images[5])  # second row starts at image nrow
    np.testing.assert_array_equal(grid[12:20, 42:50], images[9])
    assert (grid[0:2] == 255).all() and (grid[:, 10:12] == 255).all()


def test_image_grid_defaults_and_validation():
    grid = image_grid(np.zeros((10, 4, 4, 3), np.uint8), padding=0)
    assert grid.shape == (3 * 4, 4 * 4, 3)  # ceil(sqrt(10)) = 4 per row -> 3 rows
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        image_grid(np.zeros((4, 4, 3), np.uint8))


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_save_image_grid_upscales_tiny_images(tmp_path, channels, mode):
    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, channels), dtype=np.uint8)
    save_image_grid(images, tmp_path / "grid.png", nrow=4)
    picture = _open(tmp_path / "grid.png")
    assert picture.mode == mode
    assert picture.width >= 256
    grid = image_grid(images, nrow=4)
    scale = picture.width // grid.shape[1]
    assert picture.size == (grid.shape[1] * scale, grid.shape[0] * scale)
    pixels = np.asarray(picture).reshape(picture.height, picture.width, channels)
    np.testing.assert_array_equal(pixels[::scale, ::scale], grid)  # nearest-neighbour: exact copies


@pytest.mark.parametrize("channels", [1, 3])
def test_save_image_grid_caption_sits_above_unchanged_tiles(tmp_path, channels):
    """The caption (run name and step) is a white band with dark text on top; the tiles below are untouched."""
    images = np.random.default_rng(1).integers(0, 256, (16, 8, 8, channels), dtype=np.uint8)
    save_image_grid(images, tmp_path / "plain.png", nrow=4)
    save_image_grid(images, tmp_path / "captioned.png", nrow=4, caption="dcgan_digits step 1200")
    plain = np.asarray(_open(tmp_path / "plain.png"))
    captioned = np.asarray(_open(tmp_path / "captioned.png"))
    band = captioned.shape[0] - plain.shape[0]
    assert band > 0 and captioned.shape[1:] == plain.shape[1:]
    np.testing.assert_array_equal(captioned[band:], plain)
    header = captioned[:band]
    assert header.max() == 255 and header.min() < 100  # white background with dark text drawn on it
    assert np.all(header[:, -2] == 255)  # the band's right edge stays background: the text fits
