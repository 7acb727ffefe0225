"""The job model (impasto.job): one progress event, one cancel token, one Interrupted with each job's
own partial result — for every job, cancelled from another thread; and `--progress json` on every
command. Everything tiny, on the real VGG-19."""

import json
import math
import os
import signal
import threading
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from conftest import run_cli
from impasto import Cancel, Interrupted, Progress, TransferConfig, transfer
from impasto.audio import synthesise
from impasto.audio.files import read_audio, save_audio
from impasto.config import AudioConfig, GridConfig, ReconstructConfig, TrainConfig
from impasto import job
from impasto.config import FastConfig
from impasto.fast.model import load_model
from impasto.fast.stylise import load_runner, stylise_files
from impasto.fast.train import Trainer, train
from impasto.job import Reporter, ctrl_c_sets
from impasto.paper import reconstruct
from impasto.paper import figures

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread

TINY_TRAIN = TrainConfig(width=0.25, steps=6, batch=1, crop=32, side=48, checkpoint_every=100,
                         preview_every=0)


def cancelled_after(n: int):
    """(cancel, callback, events): a thread sets ``cancel`` once the callback has seen ``n`` events,
    while the job goes on — as a web page's stop button would."""
    cancel, events, reached = Cancel(), [], threading.Event()

    def callback(event):
        events.append(event)
        if len(events) == n:
            reached.set()

    def stopper():
        reached.wait(300)
        cancel.set()

    threading.Thread(target=stopper, daemon=True).start()
    return cancel, callback, events


# ---------------------------------------------------------------- the event and the token

def test_progress_is_one_json_line_without_the_image():
    event = Progress("transfer", 3, 10, "scale 1/2", {"content": 1.5, "style": math.nan, "total": 2.0}, 4.0, 9.33,
                     image=torch.zeros(1, 3, 4, 4))
    line = event.to_json()
    assert "\n" not in line
    assert json.loads(line) == {"event": "progress", "job": "transfer", "done": 3, "total": 10, "stage": "scale 1/2",
                                "unit": "it", "losses": {"content": 1.5, "style": None, "total": 2.0},
                                "elapsed": 4.0, "eta": 9.3}


def test_reporter_counts_and_estimates_from_this_run_only(monkeypatch):
    times = iter([0.0, 0.0, 10.0, 10.0, 20.0, 20.0])  # start, then each reading of the clock
    monkeypatch.setattr(job, "time", SimpleNamespace(perf_counter=times.__next__))
    events = []
    reporter = Reporter("figure", 10, events.append)  # starts at t = 0
    reporter.skip(4, "cell 1/5 (cached)")                # 4 units found done: not in the rate
    reporter({"total": 1.0}, "cell 2/5")               # t = 10: one unit in 10 s
    reporter({"total": 0.5}, "cell 2/5", units=1)      # t = 20: two units in 20 s
    assert [e.done for e in events] == [4, 5, 6]
    assert events[0].eta is None and events[1].eta == pytest.approx(10 * 5)
    assert events[2].eta == pytest.approx(10 * 4) and events[2].elapsed == 20.0


def test_ctrl_c_sets_the_token_and_a_second_one_interrupts():
    # Python's own handler, whatever this process inherited (a shell starts a background job with
    # SIGINT ignored): the test sets the disposition it relies on, and restores the one it found.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cancel = Cancel()
        with ctrl_c_sets(cancel):
            os.kill(os.getpid(), signal.SIGINT)
            assert cancel.is_set()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_interrupted_is_one_public_type():
    import impasto

    stop = impasto.Interrupted("partial")
    assert isinstance(stop, KeyboardInterrupt) and stop.partial == "partial" and stop.image == "partial"


# ---------------------------------------------------------------- every job, cancelled from another thread

def test_transfer_cancelled_gives_an_image(small_images, vgg, tmp_path):
    cancel, callback, events = cancelled_after(3)
    config = TransferConfig(size=48, precision="fp32", device="cpu", iterations=200)
    with pytest.raises(Interrupted) as stop:
        transfer(small_images["tubingen"], small_images["starry_night"], config, callback=callback,
                 network=vgg, cancel=cancel)
    assert 3 <= len(events) < 200
    stop.value.partial.save(tmp_path / "partial.png")
    assert Image.open(tmp_path / "partial.png").size == (48, 36)


def test_reconstruction_cancelled_gives_an_image(small_images, vgg):
    cancel, callback, events = cancelled_after(2)
    with pytest.raises(Interrupted) as stop:
        reconstruct.reconstruct_content(small_images["tubingen"], "relu2_1", ReconstructConfig(size=32, iterations=300),
                                  callback=callback, network=vgg, cancel=cancel)
    assert 2 <= len(events) < 300 and stop.value.partial.size == (32, 24)
    assert {e.job for e in events} == {"reconstruct"}


def test_figure_cancelled_gives_the_finished_cells(small_images, vgg, tmp_path):
    cancel, callback, events = cancelled_after(12)  # in the second cell of 10 iterations each
    config = GridConfig(size=32, iterations=10, depths=(1, 2), ratios=(1e-3, 1e-2))
    with pytest.raises(Interrupted) as stop:
        figures.figure_grid(small_images["tubingen"], small_images["starry_night"], config,
                          cache_dir=tmp_path / "cells", callback=callback, network=vgg, cancel=cancel)
    finished = stop.value.partial
    assert 1 <= len(finished) < 4 and all(c.size == (32, 24) for c in finished)
    assert len(list((tmp_path / "cells").glob("*.png"))) == len(finished)
    assert events[0].stage.startswith("cell 1/4")


def test_audio_cancelled_gives_a_result_that_can_be_written(tmp_path):
    t = torch.arange(int(0.5 * 22050)) / 22050
    clip = (0.3 * torch.sin(2 * math.pi * 440 * t) * (torch.rand(t.shape, generator=torch.Generator().manual_seed(0))
                                                       > 0.5)).unsqueeze(0)
    config = AudioConfig(n_fft=512, hop=128, filters=64, griffin_lim_iterations=5, iterations=300, seconds=0.5,
                         device="cpu")
    cancel, callback, events = cancelled_after(2)
    with pytest.raises(Interrupted) as stop:
        synthesise(clip, None, config, callback=callback, cancel=cancel)
    assert 2 <= len(events) < 300
    save_audio(stop.value.partial.samples, stop.value.partial.sample_rate, tmp_path / "partial.wav")
    samples, rate = read_audio(tmp_path / "partial.wav")
    assert rate == 22050 and samples.shape == (1, clip.shape[1]) and torch.isfinite(samples).all()


def test_training_cancelled_leaves_a_checkpoint_that_resumes_bit_for_bit(photos, style, tmp_path):
    straight = Trainer(TINY_TRAIN, [style], photos, tmp_path / "straight.pt")
    train(straight)
    cancel, callback, events = cancelled_after(2)
    first = Trainer(TINY_TRAIN, [style], photos, tmp_path / "stopped.pt")
    with pytest.raises(Interrupted) as stop:
        train(first, callback=callback, cancel=cancel)
    saved = stop.value.partial
    assert 2 <= saved.step < TINY_TRAIN.steps and load_model(saved.model).meta["steps"] == saved.step
    assert [e.stage for e in events[:2]] == ["step 1/6", "step 2/6"] and events[0].unit == "img"
    resumed = Trainer(TINY_TRAIN, [style], photos, tmp_path / "stopped.pt")
    resumed.resume()
    train(resumed)
    for key, value in straight.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_fast_over_files_cancelled_gives_the_files_written(small_images, tmp_path):
    runner = load_runner("starry_night", "fp32", "cpu")
    pairs = [(small_images["tubingen"], tmp_path / f"out{i}.png") for i in range(6)]
    cancel, callback, events = cancelled_after(1)
    with pytest.raises(Interrupted) as stop:
        stylise_files(runner, FastConfig(size=32), torch.tensor([1.0]), pairs, callback=callback, cancel=cancel)
    written = stop.value.partial.written
    assert 1 <= len(written) < 6 and all(Image.open(p).size == (32, 24) for p in written)
    assert not (tmp_path / "out5.png").exists()


# ---------------------------------------------------------------- --progress json on every command

def json_lines(err: str) -> list[dict]:
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    progress = [e for e in lines if e["event"] == "progress"]
    assert progress and lines[-1]["event"] == "result", err
    for e in progress:
        assert set(e) == {"event", "job", "done", "total", "stage", "unit", "losses", "elapsed", "eta"}
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress)
    return progress


def test_progress_json_on_every_command(small_images, photos, style, tmp_path):
    c, s = small_images["tubingen"], small_images["starry_night"]
    net = ["--precision", "fp32", "--device", "cpu"]
    commands = {
        "transfer": ["transfer", c, s, "-o", tmp_path / "t.png", "--size", 32, "--iterations", 3, *net],
        "reconstruct": ["reconstruct", "style", s, "-o", tmp_path / "r.png", "--size", 32, "--iterations", 2, *net],
        "figure": ["figure", "grid", c, s, "-o", tmp_path / "g.png", "--size", 32, "--iterations", 1,
                   "--depths", "1", "--ratios", "1e-3,1e-2", *net],
        "train": ["train", style, "--data", photos, "-o", tmp_path / "m.pt", "--width", 0.25, "--steps", 2,
                  "--batch", 1, "--crop", 32, "--side", 48, "--preview-every", 0, "--precision", "fp32",
                  "--device", "cpu"],
        "fast": ["fast", "--model", "starry_night", c, s, "-o", tmp_path / "fast", "--size", 32],
    }
    for name, argv in commands.items():
        code, _, err = run_cli(*argv, "--progress", "json")
        assert code == 0, err
        progress = json_lines(err)
        assert {e["job"] for e in progress} == {name}, err
        assert progress[-1]["done"] == progress[-1]["total"]
    # audio's command, and a figure's cells named in the stage
    wav = tmp_path / "s.wav"
    t = torch.arange(11025) / 22050
    save_audio((0.3 * torch.sin(2 * math.pi * 330 * t)).unsqueeze(0), 22050, wav)
    code, _, err = run_cli("audio", "--texture", wav, "--seconds", 0.5, "-o", tmp_path / "a.wav", "--n-fft", 512,
                           "--hop", 128, "--filters", 32, "--iterations", 3, "--griffin-lim-iterations", 3,
                           "--device", "cpu", "--progress", "json")
    assert code == 0, err
    assert [e["done"] for e in json_lines(err)] == [1, 2, 3]


def test_the_time_left_weighs_each_unit_by_its_cost(monkeypatch):
    """Iterations of a finer scale cost more: the time left is the time per cost so far times the cost
    left (1, 1, then 4 and 4: after the two cheap ones in 10 s, 40 s are left)."""
    times = iter([0.0, 5.0, 5.0, 10.0, 10.0])
    monkeypatch.setattr(job, "time", SimpleNamespace(perf_counter=times.__next__))
    events = []
    reporter = Reporter("transfer", 4, events.append, cost=[1, 1, 4, 4])
    reporter({"total": 1.0}, "scale 1/2")
    reporter({"total": 1.0}, "scale 1/2")
    assert events[0].eta == pytest.approx(5 * 9) and events[1].eta == pytest.approx(5 * 8)


def test_the_time_left_counts_an_iteration_part_way_through_its_tiles(monkeypatch):
    """A tiled evaluation's tile events count no unit but say how far the evaluation is: after 1 unit
    (cost 1) in 10 s and half of the next (cost 2) by 20 s, 2 units of cost are done in 20 s and 3 are
    left: 30 s (not 80 s, as if the clock ran on with nothing done). Never more than 0.9 of a unit."""
    times = iter([0.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0])
    monkeypatch.setattr(job, "time", SimpleNamespace(perf_counter=times.__next__))
    events = []
    reporter = Reporter("transfer", 3, events.append, cost=[1, 2, 2])
    reporter({"total": 1.0}, "scale 1/2")
    reporter({"total": 1.0}, "scale 2/2, tile 3/4, backward", units=0, partial=0.5)
    assert events[0].eta == pytest.approx(40) and events[1].eta == pytest.approx(30) and events[1].done == 1
    reporter({"total": 1.0}, "scale 2/2, tile 4/4, backward", units=0, partial=1.0)
    assert events[2].eta == pytest.approx(20 / 2.8 * 2.2)


def test_a_unit_that_turns_out_dearer_is_counted_so(monkeypatch):
    """An iteration that needs another evaluation (cost 2 planned, 3 spent): once extended, the same
    share of work done counts as more cost done, and the units after it keep their cost (after 1 unit
    in 10 s and 2 of the next 3 by 30 s, 3 of cost are done in 30 s and 3 left: 30 s)."""
    times = iter([0.0, 10.0, 10.0, 30.0, 30.0])
    monkeypatch.setattr(job, "time", SimpleNamespace(perf_counter=times.__next__))
    events = []
    reporter = Reporter("transfer", 3, events.append, cost=[1, 2, 2])
    reporter({"total": 1.0}, "scale 1/2")
    reporter.extend(1.0)
    reporter({"total": 1.0}, "scale 2/2, tile 1/4", units=0, partial=2 / 3)
    assert events[1].eta == pytest.approx(30)
    assert reporter.cost == [0.0, 1.0, 4.0, 6.0]


def test_a_phase_is_timed_at_its_own_rate_once_a_unit_of_it_is_done(monkeypatch):
    """Two cheap units in 10 s, then a phase of three units of cost 4 whose first took 30 s (the model
    said 20): the phase's other two take 7.5 s per cost, 60 s; the unit after the phase (cost 8) is
    timed at the whole run's rate, 40 s per 6 of cost. Half-way through the phase's first unit (15 s
    for 2 of cost), its rate is half its own (7.5) and half the run's (25 s for 4 of cost)."""
    times = iter([0.0, 0.0, 5.0, 5.0, 10.0, 10.0, 10.0, 25.0, 25.0, 40.0, 40.0])
    monkeypatch.setattr(job, "time", SimpleNamespace(perf_counter=times.__next__))
    events = []
    reporter = Reporter("transfer", 6, events.append, cost=[1, 1, 4, 4, 4, 8])
    reporter.phase(2)
    reporter({"total": 1.0}, "scale 1/3")
    reporter({"total": 1.0}, "scale 1/3")
    assert events[0].eta == pytest.approx(5 * 21) and events[1].eta == pytest.approx(10 / 2 * 20)
    reporter.phase(3)
    reporter({"total": 1.0}, "scale 2/3, tile 1/2", units=0, partial=0.5)
    assert events[2].eta == pytest.approx((0.5 * 15 / 2 + 0.5 * 25 / 4) * 10 + 25 / 4 * 8)
    reporter({"total": 1.0}, "scale 2/3")
    assert events[3].eta == pytest.approx(30 / 4 * 8 + 40 / 6 * 8)
