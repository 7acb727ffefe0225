"""Tests of impasto.video.write: clips out (videos, GIF/WebP, folders of frames) and read back, the output checks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import RATE, mean_error, pattern
from conftest import stereo_tones as tones
from impasto.errors import ImpastoError
from impasto.video import write as vw
from impasto.video.read import Audio, read_clip
from impasto.video.write import check_video_output, write_clip

av = pytest.importorskip("av")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


def best_lag(a: np.ndarray, b: np.ndarray, reach: int = 2048) -> tuple[int, float]:
    """The shift of ``b`` against ``a`` (samples) with the highest normalised correlation, and that value."""
    best = (0, -1.0)
    n = min(len(a), len(b)) - 2 * reach
    x = a[reach:reach + n]
    for lag in range(-reach, reach + 1, 1):
        y = b[reach + lag:reach + lag + n]
        c = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
        if c > best[1]:
            best = (lag, c)
    return best


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("w, h, fps, suffix", [(33, 21, Fraction(25), ".mp4"), (32, 24, Fraction(30000, 1001), ".mov"),
                                               (32, 24, Fraction(25), ".webm")])
def test_video_round_trip_keeps_frames_rate_size_and_sound(tmp_path, w, h, fps, suffix):
    if suffix not in vw.WRITABLE_SUFFIXES:
        pytest.skip("this FFmpeg build has no VP9/Opus encoder")
    frames = pattern(12, w, h)
    seconds = 12 / fps
    sound = tones(float(seconds))
    path = tmp_path / f"out{suffix}"
    assert write_clip(frames, fps, Audio(sound, RATE), path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left

    clip = read_clip(path)
    assert len(clip.frames) == 12
    assert clip.fps == fps and isinstance(clip.fps, Fraction)
    assert all(f.shape == (h, w, 3) and f.dtype == np.uint8 for f in clip.frames)
    assert max(mean_error(a, b) for a, b in zip(frames, clip.frames)) < 6
    assert clip.source == str(path)

    with av.open(str(path)) as c:  # odd sides are kept exactly as 4:4:4, even ones as 4:2:0
        assert c.streams.video[0].codec_context.pix_fmt == ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")

    audio = clip.audio
    assert audio is not None and audio.samples.dtype == np.float32
    assert audio.samples.shape[0] == 2
    expected_rate = RATE
    assert audio.rate == expected_rate
    # exactly the span of the frames (the encoder pads to whole 1024-sample AAC / 960 Opus frames)
    assert audio.samples.shape[1] == round(seconds * audio.rate)
    for channel in range(2):
        lag, corr = best_lag(sound[channel], audio.samples[channel], reach=300)
        assert abs(lag) <= 2 and corr > 0.95, (channel, lag, corr)


def test_audio_at_another_rate_and_mono(tmp_path):
    frames = pattern(10, 16, 16)
    sound = tones(0.4, 22_050)[:1]
    path = tmp_path / "mono.mkv"
    write_clip(frames, 25, Audio(sound, 22_050), path)
    clip = read_clip(path)
    assert clip.audio.rate == 22_050 and clip.audio.samples.shape == (1, round(0.4 * 22_050))
    lag, corr = best_lag(sound[0], clip.audio.samples[0], reach=200)
    assert abs(lag) <= 2 and corr > 0.95


def test_clip_without_sound(tmp_path):
    path = tmp_path / "silent.mp4"
    write_clip(pattern(5, 20, 12), 12, None, path)
    clip = read_clip(path)
    assert clip.audio is None and len(clip.frames) == 5 and clip.fps == 12


def test_gif_out_and_in(tmp_path):
    frames = pattern(12, 33, 21)
    path = write_clip(frames, Fraction(25), Audio(tones(0.48), RATE), tmp_path / "out.gif")
    with Image.open(path) as im:
        assert im.n_frames == 12 and im.info.get("loop") == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [40] * 12
    clip = read_clip(path)
    assert len(clip.frames) == 12 and clip.fps == 25 and clip.audio is None
    assert clip.frames[0].shape == (21, 33, 3)
    assert max(mean_error(a, b) for a, b in zip(frames, clip.frames)) < 12


def test_gif_at_30_fps_keeps_the_mean_rate(tmp_path):
    path = write_clip(pattern(12, 16, 16), 30, None, tmp_path / "out.gif")
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert set(durations) <= {30, 40} and sum(durations) == 400
    assert read_clip(path).fps == 30


def test_webp_out(tmp_path):
    frames = pattern(12, 33, 21)
    path = write_clip(frames, 25, None, tmp_path / "out.webp")
    with Image.open(path) as im:
        assert im.n_frames == 12 and im.info.get("loop") == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # Pillow reads a WebP frame's duration with its pixels
            durations.append(im.info["duration"])
    assert durations == [40] * 12
    clip = read_clip(path)
    assert len(clip.frames) == 12 and clip.fps == 25 and clip.frames[0].shape == (21, 33, 3)
    assert max(mean_error(a, b) for a, b in zip(frames, clip.frames)) < 8


def test_folder_out_and_in(tmp_path):
    frames = pattern(12, 33, 21)
    out = tmp_path / "frames"
    assert write_clip(frames, 25, Audio(tones(0.48), RATE), out) == out
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(1, 13)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temporary folder left
    clip = read_clip(out, folder_fps=12.5)
    assert clip.fps == Fraction(25, 2) and clip.audio is None
    assert all(np.array_equal(a, b) for a, b in zip(frames, clip.frames))
    # written again into the same folder with fewer frames: the old extra frames go
    write_clip(frames[:5], 25, None, out)
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(1, 6)]


# ---------------------------------------------------------------- bad input

def test_bad_frames_to_write(tmp_path):
    with pytest.raises(ImpastoError, match="no frames"):
        write_clip([], 25, None, tmp_path / "a.mp4")
    with pytest.raises(ImpastoError, match="uint8"):
        write_clip([np.zeros((8, 8, 3), np.float32)], 25, None, tmp_path / "a.mp4")
    with pytest.raises(ImpastoError, match="one size"):
        write_clip([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], 25, None, tmp_path / "a.mp4")
    with pytest.raises(ImpastoError, match="frame rate"):
        write_clip(pattern(2, 8, 8), math.nan, None, tmp_path / "a.mp4")
    with pytest.raises(ImpastoError, match="NaN"):
        write_clip(pattern(2, 8, 8), 25, Audio(np.full((2, 100), np.nan, np.float32), RATE), tmp_path / "a.mp4")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- output paths

def test_check_video_output(tmp_path, clip_mp4):
    assert check_video_output(tmp_path / "out.mp4", [clip_mp4]) == tmp_path / "out.mp4"
    assert check_video_output(tmp_path / "new_folder") == tmp_path / "new_folder"
    with pytest.raises(ImpastoError, match="is also an input") as err:
        check_video_output(clip_mp4, [clip_mp4])
    assert str(clip_mp4) in str(err.value)
    for name in ("out.avi", "out.txt", "out.png"):
        with pytest.raises(ImpastoError, match="must end in .mp4") as err:
            check_video_output(tmp_path / name)
        assert name in str(err.value)
    folder = write_clip(pattern(2, 8, 8), 25, None, tmp_path / "frames")
    assert check_video_output(folder) == folder  # a folder of frames only: written over
    with pytest.raises(ImpastoError, match="is also an input"):
        check_video_output(folder, [folder])
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ImpastoError, match="holds other files"):
        check_video_output(folder)
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(ImpastoError, match="is a file"):
        check_video_output(tmp_path / "plain")
    with pytest.raises(ImpastoError, match="does not exist"):
        check_video_output(tmp_path / "no" / "out.mp4")


def test_the_same_frames_encode_to_the_same_bytes(tmp_path):
    """H.264 with x264's cpu-independent: without it, encoding the same frames again in one process
    (with decoding in between) gave other bytes now and then, and other pixels once decoded."""
    from conftest import EXAMPLES

    clip = read_clip(EXAMPLES / "clip.mp4", 0.0, 1.0)  # 25 frames at 320x240 (at 96x72 it did not show)
    frames = clip.frames
    encoded = set()
    for k in range(6):
        path = tmp_path / f"{k}.mp4"
        write_clip(frames, clip.fps, clip.audio, path)
        encoded.add(path.read_bytes())
        read_clip(path)
    assert len(encoded) == 1
