"""Run logging: ``metrics.jsonl`` + Weights & Biases (offline by default) + TensorBoard (``logger=tensorboard``)
+ a console progress bar.

``metrics.jsonl`` is the source of truth: it needs no service or network, survives a killed run line by line,
and is what plots and tests read. W&B and TensorBoard are for browsing and comparing runs (``wandb sync``
uploads offline runs later; ``tensorboard --logdir`` reads ``run_dir/tensorboard/`` in place). Either, both
or neither may be on. The progress bar is for whoever watches the terminal.

TensorBoard gets the same scalars as metrics.jsonl and W&B (timing included), the sample images and the
histograms (``log_histogram``: the critic's outputs, which metrics.jsonl only has as means). Its writer
flushes every few seconds from a thread, so a killed run may lose its last seconds there, never in metrics.jsonl.

Non-finite floats: JSON has no NaN/Infinity, so ``metrics.jsonl`` and ``summary.json`` store them as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (which keeps NaN and ±Inf apart when a run diverges);
``read_metrics`` turns them back into floats. W&B receives the floats themselves.

Wall-clock numbers (steps/s) go to ``timing.jsonl`` and W&B, not to ``metrics.jsonl``: that file holds only what
the seed determines, so two runs of one config, or a run and its resumed twin, can be compared line for line.

Resuming (``resume_step``) drops metrics.jsonl lines written after the checkpoint, so the file continues
cleanly. An online W&B run ignores steps at or below the last step it has seen, so there the replayed steps
keep the values from before the restart; metrics.jsonl holds the replayed ones. TensorBoard's resumed writer
opens a new event file that purges the old files' events after the checkpoint step, so its curves continue
cleanly too.

Only one process of a multi-process job may write: pass ``is_main=jax.process_index() == 0``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from gan_jax.errors import GanJaxError, warn

METRICS_FILE = "metrics.jsonl"
TIMING_FILE = "timing.jsonl"
SUMMARY_FILE = "summary.json"
WANDB_MODES = ("offline", "online", "disabled")
TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_FLUSH_SECS = 5  # tensorboardX's default, 2 minutes, is long to wait for and to lose in a kill

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_POSTFIX_KEYS = ("d_loss", "g_loss", "steps_per_s")


class Logger:
    """Writes one run's metrics to ``run_dir/metrics.jsonl``, W&B, TensorBoard and a tqdm bar; see the module
    docstring."""

    def __init__(
        self,
        run_dir: str | Path,
        config: dict,
        *,
        wandb_mode: str = "offline",
        tensorboard: bool = False,
        project: str = "gan_jax",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        run_id: str | None = None,
        resume_step: int | None = None,
        total_steps: int | None = None,
        start_step: int = 0,
        show_progress: bool = True,
        is_main: bool = True,
    ) -> None:
        if wandb_mode not in WANDB_MODES:
            raise GanJaxError(f"logger.mode={wandb_mode!r} is not one of {', '.join(WANDB_MODES)}.")
        self._run_dir = Path(run_dir)
        self._is_main = is_main
        self._run: Any = None
        self._tb: Any = None
        self._run_id: str | None = None
        self._file: IO[str] | None = None
        self._timing: IO[str] | None = None
        self._bar: tqdm | None = None
        self._postfix: dict[str, str] = {}
        # Whether log_histogram goes anywhere: the same on every process, so that values computed collectively
        # (the critic over sharded arrays) are computed on all processes or on none.
        self.wants_histograms = tensorboard or wandb_mode != "disabled"
        if not is_main:
            return
        self._run_dir.mkdir(parents=True, exist_ok=True)
        metrics_path = self._run_dir / METRICS_FILE
        timing_path = self._run_dir / TIMING_FILE
        if resume_step is not None:
            _truncate_metrics(metrics_path, resume_step)
            _truncate_metrics(timing_path, resume_step)
        if wandb_mode != "disabled":
            self._run = _start_wandb(
                self._run_dir,
                config,
                mode=wandb_mode,
                project=project,
                entity=entity,
                name=name,
                group=group,
                tags=tags,
                run_id=run_id,
            )
            self._run_id = self._run.id
        if tensorboard:
            self._tb = _start_tensorboard(self._run_dir / TENSORBOARD_DIR, resume_step)
        self._file = metrics_path.open("a", encoding="utf-8")
        self._timing = timing_path.open("a", encoding="utf-8")
        if show_progress and sys.stderr.isatty():
            self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    @property
    def run_id(self) -> str | None:
        """The W&B run id; save it with the checkpoint so a resumed run continues the same W&B run."""
        return self._run_id

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        """Append ``{"step": step, **metrics}`` to metrics.jsonl (flushed), send it to W&B, update the bar."""
        self._record(self._file, step, metrics)

    def log_timing(self, step: int, values: Mapping[str, float]) -> None:
        """Wall-clock measurements (steps/s): timing.jsonl, W&B and the bar, never metrics.jsonl."""
        self._record(self._timing, step, values)

    def _record(self, file: IO[str] | None, step: int, metrics: Mapping[str, float | int]) -> None:
        """One JSON line into `file` (flushed), the same values to W&B, TensorBoard and the bar's postfix."""
        if file is None:
            return
        values = {key: _plain(value) for key, value in metrics.items()}
        file.write(dumps_json({"step": int(step), **values}) + "\n")
        file.flush()
        if self._run is not None:
            self._run.log(values, step=int(step))
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float):  # NaN/Inf as floats; lists and text have no scalar curve
                    self._tb.add_scalar(key, float(value), int(step))
        if self._bar is not None:
            self._postfix |= {key: f"{float(values[key]):.4g}" for key in _POSTFIX_KEYS if key in values}
            self._bar.set_postfix(self._postfix, refresh=False)

    def log_image(self, step: int, key: str, png_path: str | Path | Sequence[str | Path]) -> None:
        """Attach a PNG (e.g. a sample grid), or several, to W&B and TensorBoard at ``step``; the files on disk
        are the local record."""
        paths = [png_path] if isinstance(png_path, str | Path) else list(png_path)
        if self._run is not None:
            import wandb

            images = [wandb.Image(str(path)) for path in paths]
            self._run.log({key: images[0] if len(images) == 1 else images}, step=int(step))
        if self._tb is not None:
            for i, path in enumerate(paths):
                tag = key if len(paths) == 1 else f"{key}/{i}"
                self._tb.add_image(tag, _read_png(path), int(step), dataformats="HWC")

    def log_histogram(self, step: int, key: str, values: Any) -> None:
        """A distribution (e.g. the critic's outputs on real or fake samples) to TensorBoard and W&B at ``step``;
        not to metrics.jsonl, which keeps numbers per step. Non-finite values are left out (they have no bin)."""
        if self._tb is None and self._run is None:
            return
        finite = np.asarray(values, np.float64).ravel()
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return
        if self._tb is not None:
            self._tb.add_histogram(key, finite, int(step))
        if self._run is not None:
            import wandb

            self._run.log({key: wandb.Histogram(finite)}, step=int(step))

    def advance(self, step: int) -> None:
        """Move the progress bar to ``step``; cheap enough to call after every dispatch."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)

    def finish(self, summary: Mapping[str, object]) -> None:
        """Write ``run_dir/summary.json``, set the W&B summary, then close everything (a run that completed)."""
        if not self._is_main:
            return
        plain = _plain(summary)
        _atomic_write(self._run_dir / SUMMARY_FILE, dumps_json(plain, indent=2) + "\n")
        if self._run is not None:
            self._run.summary.update(plain)
        self.close()

    def close(self, exit_code: int = 0, preempted: bool = False) -> None:
        """Close the bar, the files, the TensorBoard writer (which writes what it holds) and the W&B run. A failed
        run's W&B run ends with ``exit_code`` != 0; a preempted one is marked so in W&B. Safe to call twice (the
        loop's error path may follow a finish)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            writer, self._tb = self._tb, None
            writer.close()
        for handle in (self._file, self._timing):
            if handle is not None:
                handle.close()
        self._file = self._timing = None
        if self._run is not None:
            run, self._run = self._run, None
            try:
                if preempted:
                    run.mark_preempting()
                run.finish(exit_code=exit_code)
            except Exception as err:  # e.g. wandb's service got the scheduler's signal too; the local files are whole
                warn(f"the W&B run {run.id} did not close cleanly ({err}); `wandb sync` its directory later")


def read_metrics(path: str | Path) -> list[dict]:
    """Read metrics.jsonl back, turning the non-finite markers into floats; a torn last line is skipped."""
    return [_decode(record) for record in _read_records(Path(path))]


def _start_wandb(
    run_dir: Path,
    config: dict,
    *,
    mode: str,
    project: str,
    entity: str | None,
    name: str | None,
    group: str | None,
    tags: Sequence[str],
    run_id: str | None,
) -> Any:
    """Start (or resume, given ``run_id``) a W&B run in ``run_dir/wandb/``; it never prompts for a login."""
    import wandb  # imported here: it takes about a second, and disabled runs (tests, sampling) never need it

    if mode == "online":
        env_mode = os.environ.get("WANDB_MODE", "")
        if env_mode in ("offline", "dryrun", "disabled"):
            raise GanJaxError(
                f"logger.mode=online conflicts with WANDB_MODE={env_mode} in the environment: unset "
                "WANDB_MODE or use logger.mode=offline."
            )
        # prompt=False: with no key, wandb.init would otherwise ask for one interactively on a terminal.
        if not wandb.login(prompt=False, verify=False):
            raise GanJaxError(
                "W&B online logging needs an API key and none is configured: run `wandb login` (or set "
                "WANDB_API_KEY), or use logger.mode=offline and `wandb sync` the run later."
            )
    settings = wandb.Settings(silent=True, console="off", reinit="finish_previous")
    try:
        return wandb.init(
            dir=str(run_dir),
            mode=mode,
            project=project,
            entity=entity,
            name=name,
            group=group,
            tags=list(tags),
            config=config,
            id=run_id,
            resume="allow",
            settings=settings,
        )
    except wandb.errors.Error as err:
        if mode != "online":
            raise
        raise GanJaxError(
            f"W&B could not start an online run ({err}). Check the network and run `wandb login`, or use "
            "logger.mode=offline and `wandb sync` the run later."
        ) from err


def _start_tensorboard(log_dir: Path, resume_step: int | None) -> Any:
    """A tensorboardX writer in ``log_dir``. Resuming, its new event file purges the events after
    ``resume_step`` (as metrics.jsonl drops those lines); the pid in the file name keeps two writers started
    in one second (a quick resume) from sharing a file name, which would overwrite the first file."""
    from tensorboardX import SummaryWriter  # imported here: about a second, and most runs do not need it

    # NaN/Inf are logged on purpose (a diverging run's values), not worth a warning per value.
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    return SummaryWriter(
        logdir=str(log_dir),
        purge_step=None if resume_step is None else resume_step + 1,
        flush_secs=TENSORBOARD_FLUSH_SECS,
        filename_suffix=f".{os.getpid()}",
    )


def _read_png(path: str | Path) -> np.ndarray:
    """A PNG as HWC uint8 RGB, what TensorBoard's image summary takes (matplotlib writes RGBA)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _truncate_metrics(path: Path, resume_step: int) -> None:
    """Drop lines after ``resume_step`` (written after the checkpoint we resume from), atomically."""
    if not path.exists():
        return
    kept = [record for record in _read_records(path) if record["step"] <= resume_step]
    _atomic_write(path, "".join(dumps_json(record) + "\n" for record in kept))


def _read_records(path: Path) -> list[dict]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; every complete line was flushed whole
    return records


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    """NumPy/JAX values -> Python numbers/lists: JSON and W&B get plain values; one device read each."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _encode(value: Any) -> Any:
    """Replace non-finite floats (recursively) by their string markers, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(record: dict) -> dict:
    return {k: _NONFINITE.get(v, v) if isinstance(v, str) else v for k, v in record.items()}


def dumps_json(value: Any, indent: int | None = None) -> str:
    """Strict JSON with NaN/Inf as string markers (see the module docstring)."""
    return json.dumps(_encode(value), indent=indent, allow_nan=False, default=str)
