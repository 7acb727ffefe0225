"""Tests of impasto.cli.progress: the bar and the JSON lines show the job's events."""

import json

from impasto.cli.progress import JsonLines, ProgressBar
from impasto.job import Progress


def _event(done, losses=None, **fields):
    return Progress("train", done, 10, f"step {done}/10", losses or {}, 1.0, 9.0, "img", **fields)


def test_bar_shows_the_losses_and_keeps_the_last_figures_that_are_no_loss(capsys):
    bar = ProgressBar()
    bar(_event(2, {"content": 1.5, "style": 0.25, "total": 1.75}))
    bar(_event(2, extra={"val_total": 3.125}))
    bar(_event(3, {"content": 1.25, "style": 0.125, "total": 1.375}))
    shown = bar.bar.postfix
    bar.close()
    assert "content=1.25" in shown and "style=0.125" in shown and "total" not in shown.replace("val_total", "")
    assert "val_total=3.12" in shown  # kept from the validation pass until the next one
    assert bar.bar.n == 3
    capsys.readouterr()


def test_no_bar_for_one_image_done_within_the_delay(capsys):
    import sys

    bar = ProgressBar()
    bar(Progress("fast", 0, 1, "", {}, 0.0, None, "img"))
    bar(Progress("fast", 1, 1, "", {}, 0.3, 0.0, "img"))
    bar.close()
    assert bar.bar is None and capsys.readouterr().err == ""
    late = ProgressBar()
    late(Progress("fast", 0, 1, "", {}, 0.0, None, "img"))
    late(Progress("fast", 0, 1, "", {}, 0.6, None, "img"))  # past the delay: the bar opens
    assert late.bar.n == 0 and "tqdm" in sys.modules
    late.close()
    counted = ProgressBar()
    counted(Progress("fast", 0, 2, "", {}, 0.0, None, "img"))  # more than one unit: a bar from the start
    assert counted.bar is not None
    counted.close()
    capsys.readouterr()


def test_json_lines_carry_the_typed_fields(capsys):
    lines = JsonLines()
    lines(_event(4, {"total": float("nan")}, extra={"val_total": 2.0}))
    lines(Progress("video", 5, 9, "frame 2/3", {}, 0.5, None, "frame", frame=2, frames=3, finished=True))
    first, second = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert first["losses"] == {"total": None} and first["extra"] == {"val_total": 2.0} and "frame" not in first
    assert (second["frame"], second["frames"], second["finished"], second["eta"]) == (2, 3, True, None)
