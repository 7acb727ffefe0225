"""Tests of impasto.video.fast: fast video blends outputs and features along the flow, goes on after Ctrl-C, runs ahead."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import EXAMPLES, panning_clip
from impasto import Cancel, Interrupted
from impasto.config import VideoConfig
from impasto.fast.onnx import OnnxRunner
from impasto.fast.stylise import load_runner
from impasto.image import flow
from impasto.video.fast import fast_video

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


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


def test_a_video_with_an_onnx_model_blends_the_outputs_only(model, exported, tmp_path):
    """An exported graph is one piece: there are no features to blend, so --temporal-features does
    not apply and the frames are those of the PyTorch model with the output blend alone."""
    import numpy as np

    from impasto.config import VideoConfig
    from impasto.fast.runner import TorchRunner
    from impasto.video.fast import fast_video
    from conftest import panning_clip

    clip, mix = panning_clip(n=4), torch.tensor([0.3, 0.7])
    onnx = fast_video(clip, OnnxRunner(exported), mix, None, VideoConfig(), tmp_path / "a.mp4")
    torch_only_outputs = fast_video(clip, TorchRunner(model, "fp32", "cpu"), mix, None,
                                    VideoConfig(temporal_features=0.0), tmp_path / "b.mp4")
    assert len(onnx.frames) == 4
    for a, b in zip(onnx.frames, torch_only_outputs.frames):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
