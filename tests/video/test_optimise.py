"""Tests of impasto.video.optimise: the temporal term (Ruder et al. 2016) steadies frames, kept frames resume after Ctrl-C."""

import numpy as np
import pytest
import torch

from conftest import EXAMPLES, panning_clip
from impasto import Cancel, Interrupted, TransferConfig
from impasto.config import VideoConfig
from impasto.image import flow, imageio
from impasto.image.color import luminance
from impasto.video.optimise import optimise_video, temporal_term

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


def test_the_ink_preset_paints_every_frame_in_ink(vgg, tmp_path):
    """The ink mode (issue 25) in the video's optimisation: every frame has the grey painting's chroma
    (none), and the voids leave more of it bare (flat over 3×3 pixels) than the same run without them."""
    from impasto.presets import config_for

    painting = torch.full((1, 3, 48, 48), 0.9)
    painting[..., ::6, :] = 0.1                                     # grey ink lines on white paper
    path = tmp_path / "ink.png"
    imageio.tensor_to_pil(painting).save(path)
    config = config_for("ink").replace(size=40, iterations=8, precision="fp32", device="cpu")
    bare = []
    for share in (config.void_share, 0.0):
        result = optimise_video(panning_clip(n=3), path, config.replace(void_share=share), VideoConfig(frame_iterations=4),
                                tmp_path / f"{share}.mp4", network=vgg)
        rgb = torch.from_numpy(np.stack(result.frames)).permute(0, 3, 1, 2).float() / 255
        assert float(rgb.amax(1).sub(rgb.amin(1)).max()) <= 3 / 255   # grey
        y = luminance(rgb)
        spread = torch.nn.functional.max_pool2d(y, 3, 1) + torch.nn.functional.max_pool2d(-y, 3, 1)
        bare.append(float((spread <= 3 / 255).float().mean()))
    assert bare[0] > bare[1] + 0.05, bare  # measured: 0.11 against 0.0003
