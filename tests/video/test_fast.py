"""`impasto video` (Ruder et al. 2016; flow-guided blending for the fast path): the temporal term makes
consecutive frames agree along the flow, finished frames are reused after an interruption, and the
command keeps frame count, frame rate and sound. Tiny synthetic clips on the real networks."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import EXAMPLES, panning_clip
from impasto import Cancel, Interrupted, TransferConfig
from impasto.cli.main import main
from impasto.config import VideoConfig
from impasto.fast.stylise import load_runner
from impasto.video import flow
from impasto.video.fast import fast_video
from impasto.video.optimise import optimise_video, temporal_term
from impasto.video.read import Audio, read_clip
from impasto.video.write import write_clip

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread

SMALL = TransferConfig(size=40, iterations=12, precision="fp32", device="cpu")


def test_temporal_term_by_hand():
    image = torch.zeros(1, 3, 2, 2)
    warped = torch.full((1, 3, 2, 2), 1 / 255)
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 1.0]]]])
    term = temporal_term([(warped, mask)], 7.0, (2, 2))
    scale = (512 * 512) / 4  # per position: a 2x2 frame is 512x512 at 512 px
    assert term.weight == 7.0
    assert float(term.fn({}, image)) == pytest.approx(3 * (1 + 0 + 0.5 + 1) * scale)


def test_temporal_loss_makes_frames_agree_along_the_flow(vgg, tmp_path):
    clip = panning_clip()
    tied = optimise_video(clip, EXAMPLES / "starry_night.jpg", SMALL, VideoConfig(frame_iterations=6),
                          tmp_path / "a.mp4", network=vgg)
    alone = optimise_video(clip, EXAMPLES / "starry_night.jpg", SMALL,
                           VideoConfig(frame_iterations=6, temporal_weight=0.0), tmp_path / "b.mp4", network=vgg)
    assert len(tied.frames) == len(alone.frames) == 6 and tied.frames[0].shape == (30, 40, 3)
    assert np.array_equal(tied.frames[0], alone.frames[0])  # the first frame has no earlier one
    steady, flicker = flow.warping_error(tied.frames, clip.frames), flow.warping_error(alone.frames, clip.frames)
    assert steady < 0.7 * flicker, (steady, flicker)


PER_FRAME = VideoConfig(temporal=0.0, temporal_features=0.0)


def test_fast_mode_blends_along_the_flow(tmp_path):
    clip = panning_clip(n=5)
    runner = load_runner("starry_night", "fp32", "cpu")
    mix = torch.tensor([1.0])
    blended = fast_video(clip, runner, mix, None, VideoConfig(temporal=0.6, temporal_features=0.0), tmp_path / "a.mp4")
    alone = fast_video(clip, runner, mix, None, PER_FRAME, tmp_path / "b.mp4")
    assert np.array_equal(blended.frames[0], alone.frames[0])
    assert flow.warping_error(blended.frames, clip.frames) < flow.warping_error(alone.frames, clip.frames)


def contrast(frames) -> float:
    return float(np.mean([f.astype(np.float64).std() for f in frames[1:]]))


def test_blending_the_features_steadies_without_washing_out(tmp_path):
    """Features blended along the flow (Chen et al. 2017) make the frames agree, and the network's
    second half paints them at the contrast of frames stylised on their own; blending the outputs
    instead averages two frames' strokes and lowers it. The first frame is the per-frame one."""
    clip = panning_clip(n=6)
    runner, mix = load_runner("starry_night_small", "fp32", "cpu"), torch.tensor([1.0])
    alone = fast_video(clip, runner, mix, None, PER_FRAME, tmp_path / "a.mp4")
    features = fast_video(clip, runner, mix, None, VideoConfig(temporal=0.0, temporal_features=0.7), tmp_path / "b.mp4")
    outputs = fast_video(clip, runner, mix, None, VideoConfig(temporal=0.5, temporal_features=0.0), tmp_path / "c.mp4")
    assert np.array_equal(features.frames[0], alone.frames[0])
    assert flow.warping_error(features.frames, clip.frames) < 0.7 * flow.warping_error(alone.frames, clip.frames)
    assert contrast(features.frames) > 0.98 * contrast(alone.frames)
    assert contrast(outputs.frames) < 0.97 * contrast(features.frames)


def test_interrupted_fast_video_goes_on_with_the_blended_features(tmp_path):
    """Ctrl-C after frame 3 keeps the frames and frame 3's blended features; the same call goes on
    from frame 4 (the network runs on the frames not kept only) and ends as an unbroken run."""
    clip = panning_clip(n=7)
    runner, mix, video = load_runner("starry_night_small", "fp32", "cpu"), torch.tensor([1.0]), VideoConfig()
    straight = fast_video(clip, runner, mix, None, video, tmp_path / "s.mp4")
    cancel = Cancel()

    def stop_after_third(event):
        if event.stage == "frame 3/7 finished":
            cancel.set()

    with pytest.raises(Interrupted) as stopped:
        fast_video(clip, runner, mix, None, video, tmp_path / "v.mp4", callback=stop_after_third, cancel=cancel)
    partial = stopped.value.partial
    assert len(partial.frames) == 3 and (partial.folder / "features.npz").is_file()
    encoded = []
    counting = load_runner("starry_night_small", "fp32", "cpu")
    encode = counting.encode
    counting.encode = lambda image, m: encoded.append(1) or encode(image, m)
    again = fast_video(clip, counting, mix, None, video, tmp_path / "v.mp4")
    assert len(encoded) == 4
    assert all(np.array_equal(a, b) for a, b in zip(again.frames, straight.frames))


def test_fast_mode_passes_run_ahead_on_each_thread_in_order(tmp_path):
    """On two threads the network passes and flow guides of later frames run two at a time ahead of
    the blend, each with one PyTorch thread: the same frames as one at a time, and PyTorch's thread
    count is restored afterwards."""
    clip = panning_clip(n=7)
    runner, mix, video = load_runner("starry_night_small", "fp32", "cpu"), torch.tensor([1.0]), VideoConfig(temporal=0.5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fast_video(clip, runner, mix, None, video, tmp_path / "a.mp4")
        torch.set_num_threads(2)
        two = fast_video(clip, runner, mix, None, video, tmp_path / "b.mp4")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(two.frames) == 7 and all(np.array_equal(a, b) for a, b in zip(one.frames, two.frames))
    assert not np.array_equal(two.frames[3], two.frames[4])  # frames differ: a mix-up would show


def test_each_finished_frame_is_reported_with_the_frame_as_its_image(tmp_path):
    """The one progress event carries each finished frame (what a web page shows as it arrives),
    counting no unit of work: the frame count still ends at the clip's length."""
    clip = panning_clip(n=3)
    events = []
    result = fast_video(clip, load_runner("starry_night_small", "fp32", "cpu"), torch.tensor([1.0]), None,
                        VideoConfig(), tmp_path / "a.mp4", callback=events.append)
    finished = [e for e in events if e.stage.endswith("finished")]
    assert [e.stage for e in finished] == ["frame 1/3 finished", "frame 2/3 finished", "frame 3/3 finished"]
    for event, frame in zip(finished, result.frames):
        as_uint8 = (event.image[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        assert np.array_equal(as_uint8, frame)
    assert events[-1].done == events[-1].total == 3


def test_a_scene_cut_starts_afresh(tmp_path):
    clip = panning_clip(n=3)
    other = np.asarray(Image.open(EXAMPLES / "kandinsky.jpg").convert("RGB").resize((40, 30)))
    clip.frames[2] = other  # nothing of frame 1 is in frame 2
    runner = load_runner("starry_night", "fp32", "cpu")
    blended = fast_video(clip, runner, torch.tensor([1.0]), None, VideoConfig(temporal=1.0, temporal_features=1.0),
                         tmp_path / "a.mp4")
    fresh = fast_video(clip, runner, torch.tensor([1.0]), None, PER_FRAME, tmp_path / "b.mp4")
    assert not np.array_equal(blended.frames[1], fresh.frames[1])
    assert np.array_equal(blended.frames[2], fresh.frames[2])


def test_interrupted_video_goes_on_with_the_kept_frames(vgg, tmp_path):
    clip = panning_clip(n=5)
    video = VideoConfig(frame_iterations=4)
    straight = optimise_video(clip, EXAMPLES / "starry_night.jpg", SMALL, video, tmp_path / "s.mp4", network=vgg)
    cancel = Cancel()

    def stop_in_third_frame(event):
        if event.stage.startswith("frame 3/"):
            cancel.set()

    with pytest.raises(Interrupted) as stopped:
        optimise_video(clip, EXAMPLES / "starry_night.jpg", SMALL, video, tmp_path / "o.mp4",
                       callback=stop_in_third_frame, network=vgg, cancel=cancel)
    partial = stopped.value.partial
    assert len(partial.frames) == 2 and partial.total == 5
    assert sorted(p.name for p in partial.folder.iterdir()) == ["frame_00001.npy", "frame_00002.npy"]
    events = []
    resumed = optimise_video(clip, EXAMPLES / "starry_night.jpg", SMALL, video, tmp_path / "o.mp4",
                             callback=events.append, network=vgg)
    assert [e.stage for e in events[:2]] == ["frame 1/5 (kept)", "frame 2/5 (kept)"]
    assert all(np.array_equal(a, b) for a, b in zip(resumed.frames, straight.frames))


def test_video_command_keeps_frames_rate_and_sound(tmp_path):
    clip = panning_clip(n=8, size=(41, 31), step=1)  # odd sizes
    t = np.arange(int(22050 * 8 / 25)) / 22050
    audio = Audio(np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32),
                  22050)
    source = tmp_path / "in.mp4"
    write_clip(clip.frames, Fraction(25), audio, source)
    out = tmp_path / "out.mp4"
    assert main(["video", str(source), "--model", "starry_night", "-o", str(out), "--quiet", "--device", "cpu"]) == 0
    result = read_clip(out)
    assert len(result.frames) == 8 and result.fps == 25 and result.frames[0].shape == (31, 41, 3)
    assert result.audio is not None and result.audio.samples.shape[0] == 2
    assert abs(result.audio.samples.shape[1] / result.audio.rate - 8 / 25) < 0.05
    assert not list(tmp_path.glob("*.frames-*"))  # the kept frames are gone once the video is written
    gif = tmp_path / "out.gif"
    assert main(["video", str(source), "--model", "starry_night", "-o", str(gif), "--quiet", "--device", "cpu",
                 "--temporal", "0"]) == 0
    assert len(read_clip(gif).frames) == 8


@pytest.mark.parametrize("argv, message", [
    (["video", "IN", "-o", "OUT"], "give style image(s) (optimisation) or --model NAME"),
    (["video", "IN", "STYLE", "--model", "starry_night", "-o", "OUT"], "either style images or --model"),
    (["video", "IN", "--model", "starry_night", "--color", "match", "-o", "OUT"], "--color match needs style"),
    (["video", "IN", "--model", "starry_night", "-o", "IN"], "is also an input"),
    (["video", "IN", "--model", "starry_night", "--temporal", "2", "-o", "OUT"], "--temporal must be from 0 to 1"),
    (["video", "IN", "STYLE", "--masks", "STYLE", "-o", "OUT"], "--masks and coarse-to-fine"),
    (["video", "IN", "--model", "starry_night", "--start", "100", "-o", "OUT"], "IN"),
    (["video", "IN", "--model", "starry_night", "--size", "8", "-o", "OUT"], "--size must be from 16 to 65536, got 8"),
    (["video", "IN", "STYLE", "--size", "8", "-o", "OUT"], "--size must be from 16 to 65536, got 8"),
])
def test_video_bad_input_is_one_line(tmp_path, capsys, argv, message):
    clip = panning_clip(n=3)
    source = tmp_path / "in.mp4"
    write_clip(clip.frames, Fraction(25), None, source)
    names = {"IN": str(source), "OUT": str(tmp_path / "out.mp4"), "STYLE": str(EXAMPLES / "starry_night.jpg")}
    assert main([names.get(a, a) for a in argv] + ["--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message.replace("IN", str(source)) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # nothing written, no frames kept
