"""Tests of impasto.video.read: clips in (videos, GIF/WebP, folders of frames), start and duration, bad input as one line."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import RATE, _still, mean_error, pattern
from conftest import stereo_tones as tones
from impasto.errors import ImpastoError
from impasto.video.read import Audio, probe_clip, read_clip
from impasto.video.write import write_clip

av = pytest.importorskip("av")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


@pytest.fixture(scope="module")
def long_mp4(tmp_path_factory) -> Path:
    """3 s at 10 fps (30 frames, 32x24) with sound: a --start past 2 s seeks."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_clip(pattern(30, 32, 24), 10, Audio(tones(3.0), RATE), path)
    return path


# ---------------------------------------------------------------- frames in

def test_gif_in_with_uneven_durations(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    images = [Image.new("RGB", (9, 7), c) for c in colours]
    path = tmp_path / "in.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=[40, 40, 80, 40], loop=0)
    clip = read_clip(path)
    assert clip.fps == 20  # 4 frames in 200 ms
    assert [tuple(f[0, 0]) for f in clip.frames] == colours
    # a GIF without frame times plays at 10 fps, as in browsers
    images[0].save(path, save_all=True, append_images=images[1:], loop=0)
    assert read_clip(path).fps == 10


def test_folder_in_is_sorted_by_number(tmp_path):
    colours = {1: (10, 0, 0), 2: (20, 0, 0), 10: (100, 0, 0), 9: (90, 0, 0)}
    for number, colour in colours.items():
        Image.new("RGB", (5, 3), colour).save(tmp_path / f"shot_{number}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    clip = read_clip(tmp_path)
    assert [int(f[0, 0, 0]) for f in clip.frames] == [10, 20, 90, 100]
    assert clip.fps == 25


def test_rotated_phone_video_is_read_upright(tmp_path):
    frame = np.zeros((16, 32, 3), np.uint8)
    frame[:8, :8] = 255  # a white corner at the top left of the stored picture
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("PyAV too old to tag a rotation")
        stream.codec_context.width, stream.codec_context.height = 32, 16
        stream.set_display_rotation(90)  # shown turned 90° counter-clockwise
        for i in range(2):
            f = av.VideoFrame.from_ndarray(frame, format="rgb24")
            f.pts = i
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    clip = read_clip(path)
    upright = clip.frames[0]
    assert upright.shape == (32, 16, 3)
    # turned counter-clockwise, the top-left corner is at the bottom left
    assert upright[-8:, :8].mean() > 200 and upright[:8, :8].mean() < 50


# ---------------------------------------------------------------- start and duration

def test_start_and_duration_cut_frames_and_sound(clip_mp4):
    whole = read_clip(clip_mp4)
    part = read_clip(clip_mp4, start=0.2, duration=0.2)
    assert len(part.frames) == 5
    assert all(np.array_equal(a, b) for a, b in zip(part.frames, whole.frames[5:10]))
    assert part.audio.samples.shape == (2, 9600)
    np.testing.assert_allclose(part.audio.samples, whole.audio.samples[:, 9600:19200], atol=1e-4)
    # to the end; a start between two frames takes the nearest
    rest = read_clip(clip_mp4, start=0.39)
    assert len(rest.frames) == 2 and np.array_equal(rest.frames[0], whole.frames[10])
    assert rest.audio.samples.shape == (2, round(2 / 25 * RATE))


def test_start_after_two_seconds_seeks_to_the_same_frames(long_mp4):
    whole = read_clip(long_mp4)
    assert len(whole.frames) == 30 and whole.fps == 10
    part = read_clip(long_mp4, start=2.5, duration=0.3)
    assert len(part.frames) == 3
    assert all(np.array_equal(a, b) for a, b in zip(part.frames, whole.frames[25:28]))
    np.testing.assert_allclose(part.audio.samples, whole.audio.samples[:, 120_000:134_400], atol=1e-3)


def test_start_and_duration_on_gif_and_folder(tmp_path):
    frames = pattern(12, 16, 16)
    gif = write_clip(frames, 25, None, tmp_path / "a.gif")
    assert len(read_clip(gif, start=0.08, duration=0.12).frames) == 3
    folder = write_clip(frames, 25, None, tmp_path / "f")
    part = read_clip(folder, start=0.4, duration=0.08, folder_fps=25)
    assert [np.array_equal(a, b) for a, b in zip(part.frames, frames[10:12])] == [True, True]


# ---------------------------------------------------------------- bad input

def _text(tmp_path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("these are notes, not a video\n" * 20)
    return path


def _audio_only(tmp_path) -> Path:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=RATE)
        frame = av.AudioFrame.from_ndarray(tones(0.2), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = RATE, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _no_frames(tmp_path) -> Path:
    """An AVI with a video stream and not one frame in it."""
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.codec_context.width, stream.codec_context.height = 16, 16
        out.start_encoding()
    return path


def _undecodable(tmp_path) -> Path:
    """A Matroska file whose video codec no FFmpeg knows (its codec id renamed)."""
    path = tmp_path / "unknown.mkv"
    write_clip(pattern(3, 16, 16), 25, None, path)
    data = path.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QUUX4/ISO/AVC"))
    return path


def _bytes(name: str, data: bytes):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name
    return make


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cover.png").write_bytes(b"")  # no number in the name
    return tmp_path / "d"


BAD_FILES = {
    "missing": (lambda tmp_path: tmp_path / "nowhere.mp4", "file not found"),
    "empty file": (_bytes("e.mp4", b""), "empty file"),
    "folder without numbered frames": (_folder, "no numbered frames"),
    "not a video": (_text, "not a video"),
    "random bytes named .gif": (_bytes("x.gif", bytes(range(256)) * 8), "not a video"),
    "no video stream": (_audio_only, "no video stream"),
    "no frames": (_no_frames, "no video frames"),
    "undecodable codec": (_undecodable, "cannot decode its video"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_one_line_naming_the_file(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ImpastoError, match=message) as err:
        read_clip(path)
    text = str(err.value)
    assert str(path) in text and "\n" not in text


@pytest.mark.parametrize("start, duration, message", [
    (-1, None, "--start must be 0 or more"), (math.nan, None, "--start must be a finite"),
    (math.inf, None, "--start must be a finite"), (0, -0.5, "--duration must be more than 0"),
    (0, 0, "--duration must be more than 0"), (0, math.nan, "--duration must be a finite"),
    (0, math.inf, "--duration must be a finite"), (0.5, None, "--start 0.5 s is beyond the end"),
    (5, 1, "--start 5 s is beyond the end"), (0.2, 0.5, "goes beyond the end"),
    (0.12, 0.01, "holds no frame"),
])
def test_bad_start_and_duration(clip_mp4, tmp_path, start, duration, message):
    gif = write_clip(pattern(12, 16, 16), 25, None, tmp_path / "a.gif")
    folder = write_clip(pattern(12, 16, 16), 25, None, tmp_path / "f")
    for path in (clip_mp4, gif, folder):
        with pytest.raises(ImpastoError, match=message) as err:
            read_clip(path, start=start, duration=duration)
        assert str(path) in str(err.value)


def test_beyond_the_end_after_a_seek(long_mp4):
    with pytest.raises(ImpastoError, match="beyond the end"):
        read_clip(long_mp4, start=2.8, duration=0.5)
    with pytest.raises(ImpastoError, match="beyond the end"):
        read_clip(long_mp4, start=3.5)


def test_frames_too_large(clip_mp4, tmp_path):
    gif = write_clip(pattern(3, 16, 16), 25, None, tmp_path / "a.gif")
    folder = write_clip(pattern(3, 16, 16), 25, None, tmp_path / "f")
    for path in (clip_mp4, gif, folder):
        with pytest.raises(ImpastoError, match="too large") as err:
            read_clip(path, max_pixels=100)
        assert str(path) in str(err.value)


def test_pyav_missing_is_one_line(monkeypatch, tmp_path, clip_mp4):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails
    expected = "video needs the optional PyAV package: pip install 'impasto[video]'"
    with pytest.raises(ImpastoError) as err:
        read_clip(clip_mp4)
    assert str(err.value) == expected
    with pytest.raises(ImpastoError) as err:
        write_clip(pattern(2, 8, 8), 25, None, tmp_path / "x.mp4")
    assert str(err.value) == expected
    assert not list(tmp_path.iterdir())
    # Pillow formats and folders need no PyAV
    assert len(read_clip(write_clip(pattern(2, 8, 8), 25, None, tmp_path / "x.gif")).frames) == 2


# ---------------------------------------------------------------- one set of checks: read_clip and probe_clip

def _mp4_with_sound(tmp_path: Path) -> Path:
    """12 frames with sound, its index first (+faststart), as write_clip makes it."""
    return write_clip(pattern(12, 32, 24), Fraction(25), Audio(tones(0.48), RATE), tmp_path / "sound.mp4")


def _cut(fraction: float):
    """The MP4 with sound cut short: the index still promises every packet, the last ones are gone."""
    def make(tmp_path: Path) -> Path:
        data = _mp4_with_sound(tmp_path).read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[:int(len(data) * fraction)])
        return tmp_path / "cut.mp4"
    return make


def _unknown_audio(tmp_path: Path) -> Path:
    """A Matroska file whose audio codec no FFmpeg knows (PyAV then has no codec context for it)."""
    path = write_clip(pattern(6, 16, 16), 25, Audio(tones(0.24), RATE), tmp_path / "sound.mkv")
    data = path.read_bytes()
    assert data.count(b"A_AAC") == 1
    path.write_bytes(data.replace(b"A_AAC", b"A_QUX"))
    return path


CLIPS = {
    "an MP4 with sound": (_mp4_with_sound, None),
    "an animated GIF": (lambda tmp_path: write_clip(pattern(5, 16, 12), 20, None, tmp_path / "a.gif"), None),
    "a GIF of one frame": (_still("GIF", ".gif"), "a GIF of one frame is a still image, not a clip"),
    "a still PNG": (_still("PNG", ".png"), "a PNG of one frame is a still image, not a clip"),
    "a JPEG": (_still("JPEG", ".jpg"), "a still image, not a clip"),
    "an MP4 cut short": (_cut(0.6), "cannot decode its audio (aac)"),
    "an MP4 cut near its end": (_cut(0.9), "cannot decode its audio (aac)"),
    "audio of an unknown codec": (_unknown_audio, "cannot decode its audio (unknown codec)"),
    "not a video": (_text, "not a video"),
    "no video stream": (_audio_only, "no video stream"),
    "undecodable codec": (_undecodable, "cannot decode its video"),
}


@pytest.mark.parametrize("case", list(CLIPS))
def test_reading_and_probing_a_clip_accept_and_refuse_the_same_clips(tmp_path, case):
    """What ``impasto video`` reads (read_clip) and what ``impasto serve`` takes as an upload
    (probe_clip, on the file's bytes) is decided by the same checks, with the same line."""
    make, refusal = CLIPS[case]
    path = make(tmp_path)
    outcomes = []
    for read in (lambda: read_clip(path, name="NAME"), lambda: probe_clip(path.read_bytes(), "NAME")):
        try:
            got = read()
        except ImpastoError as exc:
            outcomes.append(str(exc))
        else:
            frames = got.frames if isinstance(got.frames, int) else len(got.frames)
            h, w = (got.height, got.width) if isinstance(got.frames, int) else got.frames[0].shape[:2]
            sound = got.audio if isinstance(got.audio, bool) else got.audio is not None
            outcomes.append((frames, w, h, got.fps, sound))
    assert outcomes[0] == outcomes[1], outcomes
    if refusal is None:
        assert isinstance(outcomes[0], tuple)
    else:
        assert outcomes[0].startswith("NAME") and refusal in outcomes[0] and "\n" not in outcomes[0]
        assert str(tmp_path) not in outcomes[0]


def test_probing_keeps_the_first_frame_and_stops_at_the_limits(tmp_path):
    from impasto.video.read import FormatNotTaken, OverLimit

    path = _mp4_with_sound(tmp_path)
    info = probe_clip(path)
    assert (info.width, info.height, info.frames, info.fps, info.audio, info.codec) == (32, 24, 12, 25, True, "h264")
    assert info.duration == pytest.approx(0.48) and "mp4" in info.format.split(",")
    assert info.poster.size == (32, 24) and mean_error(np.asarray(info.poster), read_clip(path).frames[0]) == 0
    for limits, message in [({"max_frames": 10}, "is too long: more than 10 frames (the limit is 10 frames per clip)"),
                            ({"max_seconds": 0.2}, "is too long: more than 0.2 s (the limit is 0.2 s per clip)"),
                            ({"max_pixels": 500}, "is too large: 32x24 pixels a frame, over the limit of 0.0005 "
                                                  "million pixels per frame of a clip")]:
        with pytest.raises(OverLimit) as err:
            probe_clip(path.read_bytes(), "walk.mp4", **limits)
        assert str(err.value) == "walk.mp4 " + message
    with pytest.raises(FormatNotTaken) as err:
        probe_clip(path, formats={"webm", "GIF"})
    assert err.value.format == "mov,mp4,m4a,3gp,3g2,mj2"
    gif = write_clip(pattern(31, 8, 8), 25, None, tmp_path / "long.gif")
    with pytest.raises(OverLimit, match="long.gif is too long: 31 frames"):
        probe_clip(gif.read_bytes(), "long.gif", max_frames=30)
