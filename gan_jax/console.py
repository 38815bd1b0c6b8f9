"""What a run says on the console: where it writes, from which step it starts, a status line per `log_every`
when no progress bar is shown (nohup, SLURM, CI: the line also lands in train.log), and at the end the run
directory, final metrics, best checkpoint and wall time.

Lines go through the `gan_jax.run` logger: under Hydra its handlers already write stdout and `train.log`; when no
handler is configured (the Python API), the run attaches its own two for its duration.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("gan_jax.run")
STATUS_KEYS = ("d_loss", "g_loss")


def _number(value: Any) -> float | None:
    """A float for the line: a population's per-member list is shown as its mean."""
    if isinstance(value, list | tuple):
        finite = [float(v) for v in value if isinstance(v, int | float)]
        return sum(finite) / len(finite) if finite else None
    return float(value) if isinstance(value, int | float) else None


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Console:
    """One run's console lines (process 0 only). `bar`: a progress bar is shown, so no status lines."""

    def __init__(self, run_dir: Path, total_steps: int, *, bar: bool, is_main: bool) -> None:
        self.run_dir, self.total, self.bar, self.is_main = run_dir, total_steps, bar, is_main
        self.started = time.perf_counter()
        self._handlers: list[logging.Handler] = []
        if is_main and not logging.getLogger().handlers and not LOGGER.handlers:
            self._attach()

    def _attach(self) -> None:
        stream = logging.StreamHandler(sys.stdout)
        file = logging.FileHandler(self.run_dir / "train.log", encoding="utf-8")
        file.setFormatter(logging.Formatter("[%(asctime)s] %(message)s"))
        self._handlers = [stream, file]
        for handler in self._handlers:
            LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False

    def _say(self, text: str) -> None:
        if self.is_main:
            LOGGER.info(text)

    def start(self, step: int, resumed: bool, started_from: str | None = None) -> None:
        where = f"gan_jax: run directory {self.run_dir.absolute()}"
        if started_from and step < self.total:
            self._say(f"{where}; starting from {started_from}, training to step {self.total}")
        elif step >= self.total:
            self._say(f"{where}; nothing to do: the checkpoint is at step {step} >= train.steps={self.total}")
        elif resumed:
            self._say(f"{where}; resumed from step {step} of {self.total}")
        else:
            self._say(f"{where}; training {self.total} steps")

    def status(self, step: int, metrics: Mapping[str, Any], steps_per_s: float, latest_eval: str | None) -> None:
        """`step 1200/8000 (15%) d_loss 1.37 g_loss 0.73 | 85.2 steps/s | ETA 1m20s | reverse_kl 0.012 @1000`."""
        if self.bar:
            return
        parts = [f"step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)"]
        parts += [f"{k} {v:.4g}" for k in STATUS_KEYS if (v := _number(metrics.get(k))) is not None]
        line = " ".join(parts) + f" | {steps_per_s:.1f} steps/s"
        if steps_per_s > 0 and step < self.total:
            line += f" | ETA {_duration((self.total - step) / steps_per_s)}"
        if latest_eval:
            line += f" | {latest_eval}"
        self._say(line)

    def finish(self, summary: Mapping[str, Any], metric: str | None) -> None:
        values = [f"{k} {v:.4g}" for k in (*STATUS_KEYS, metric or "") if (v := _number(summary.get(k))) is not None]
        best = summary.get("best")
        best_text = f"; best {best['metric']} {best['value']:.4g} at step {best['step']}" if best else ""
        wall = _duration(time.perf_counter() - self.started)
        self._say(
            f"gan_jax: done at step {summary.get('step')} in {wall}: {', '.join(values) or 'no metrics'}{best_text}; "
            f"outputs in {self.run_dir.absolute()}"
        )
        self.close()

    def close(self) -> None:
        for handler in self._handlers:
            LOGGER.removeHandler(handler)
            handler.close()
        self._handlers = []


def eval_text(metrics: Mapping[str, Any], step: int, name: str | None) -> str | None:
    """The latest evaluation for the status line: the best-checkpoint metric, else the first value."""
    key = name if name in metrics else next(iter(metrics), None)
    value = _number(metrics.get(key)) if key else None
    return None if value is None else f"{key} {value:.4g} @{step}"
