"""logger=tensorboard: tensorboardX event files in <run_dir>/tensorboard/ beside metrics.jsonl and W&B. The files
are read back the way TensorBoard reads them (TFRecord framing, Event protos, a resumed writer's purge event),
so what is checked is what TensorBoard would show."""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboardX.proto import event_pb2

from gan_jax.logging import Logger, read_metrics

RUN = ("model.g_widths=[16]", "model.d_widths=[16]", "train.batch_size=32", "eval.num_samples=200")
STEPS = ("train.steps=40", "train.steps_per_call=10", "train.log_every=10", "eval.every=20", "train.ckpt_every=20")
CODE = "import sys; from gan_jax.cli.train import main; sys.argv[0] = 'gan-jax-train'; main()"


def _train(run_dir: Path, *args: str) -> None:
    cmd = [sys.executable, "-c", CODE, *RUN, *STEPS, *args, "logger.progress=false", f"hydra.run.dir={run_dir}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-4000:]


def _records(path: Path) -> list[bytes]:
    """The TFRecord payloads of one event file: u64 length, u32 crc, payload, u32 crc."""
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        out.append(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
    return out


def read_events(log_dir: Path) -> dict[str, list[tuple[int, object]]]:
    """Summary values by tag, as (step, value) in write order, over every event file in time order; a writer's
    SessionLog START at step S purges the earlier events at steps >= S, as TensorBoard does."""
    tags: dict[str, list[tuple[int, object]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for payload in _records(path):
            event = event_pb2.Event.FromString(payload)
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                tags = {tag: [(s, v) for s, v in values if s < event.step] for tag, values in tags.items()}
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                item = value.simple_value if kind == "simple_value" else getattr(value, kind)
                tags.setdefault(value.tag, []).append((event.step, item))
    return tags


def _check_run(run_dir: Path, eval_steps: tuple[int, ...]) -> dict[str, list[tuple[int, object]]]:
    """The scalars equal metrics.jsonl's (float32, as TensorBoard stores them); each evaluation has the sample
    image and the histograms of D's outputs on real and fake samples."""
    events = read_events(run_dir / "tensorboard")
    lines = [line for line in read_metrics(run_dir / "metrics.jsonl") if "d_loss" in line]
    assert events["d_loss"] == [(line["step"], np.float32(line["d_loss"])) for line in lines]
    assert [s for s, _ in events["reverse_kl"]] == list(eval_steps)
    assert [s for s, _ in events["steps_per_s"]] == [line["step"] for line in lines]  # timing.jsonl's too
    for tag in ("samples", "d_outputs/real", "d_outputs/fake"):
        assert [s for s, _ in events[tag]] == list(eval_steps), tag
    for step, image in events["samples"]:
        png = Image.open(run_dir / "plots" / f"samples_{step}.png")
        assert Image.open(io.BytesIO(image.encoded_image_string)).size == png.size == (image.width, image.height)
    for _, histo in events["d_outputs/real"] + events["d_outputs/fake"]:
        assert histo.num == 200 and histo.min <= histo.max  # one output per evaluated sample (eval.num_samples)
    return events


def test_wandb_and_tensorboard_together(tmp_path):
    _train(tmp_path, "logger=[wandb,tensorboard]")
    _check_run(tmp_path, (20, 40))
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_tensorboard_alone_resumed_from_an_older_checkpoint(tmp_path):
    """As if killed after logging step 40 but before its checkpoint: the resumed writer's purge hides the old
    file's steps after 20, so each step has one value, the replayed one (as metrics.jsonl)."""
    _train(tmp_path, "logger=tensorboard")
    assert not (tmp_path / "wandb").exists()
    shutil.rmtree(tmp_path / "checkpoints" / "40")
    _train(tmp_path, "logger=tensorboard", "train.steps=60", "train.resume=true")
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    events = _check_run(tmp_path, (20, 40, 60))
    assert [s for s, _ in events["d_loss"]] == [10, 20, 30, 40, 50, 60]
    assert not (tmp_path / "wandb").exists()


def test_logger_values_nonfinite_histograms_and_other_processes(tmp_path):
    """NaN reaches TensorBoard as a float; histograms skip non-finite values and stay out of metrics.jsonl; a
    process other than the main one writes nothing."""
    logger = Logger(tmp_path / "run", {}, wandb_mode="disabled", tensorboard=True, show_progress=False)
    logger.log(1, {"d_loss": float("nan"), "modes": [1, 2], "label": "x"})
    logger.log_histogram(1, "d_real", np.array([0.5, np.inf, -1.0, np.nan]))
    logger.log_histogram(2, "d_fake", np.array([np.nan]))  # nothing finite: no histogram
    logger.close()
    events = read_events(tmp_path / "run" / "tensorboard")
    assert set(events) == {"d_loss", "d_real"}
    assert math.isnan(events["d_loss"][0][1])
    assert events["d_real"][0][1].num == 2 and events["d_real"][0][1].min == -1.0
    (line,) = read_metrics(tmp_path / "run" / "metrics.jsonl")  # the log line only, no histogram
    assert set(line) == {"step", "d_loss", "modes", "label"} and math.isnan(line["d_loss"])
    other = Logger(tmp_path / "other", {}, wandb_mode="disabled", tensorboard=True, is_main=False)
    other.log(1, {"d_loss": 1.0})
    other.log_histogram(1, "d_real", [1.0])
    other.close()
    assert not (tmp_path / "other").exists()
