"""Tests of impasto.cli.video: `impasto video` keeps frame count, frame rate and sound, and refuses bad input in one line."""

from fractions import Fraction

import numpy as np
import pytest

from conftest import EXAMPLES, _still, panning_clip
from impasto.cli.main import main
from impasto.video.read import Audio, read_clip
from impasto.video.write import write_clip

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


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


def test_the_command_line_refuses_a_gif_of_one_frame_as_a_clip(tmp_path, capsys):
    from impasto.cli.main import main

    still = _still("GIF", ".gif")(tmp_path)
    out = tmp_path / "out.mp4"
    assert main(["video", str(still), "--model", "starry_night", "-o", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == (f"impasto: error: {still}: a GIF of one frame is a still image, not a clip (a video, an "
                   f"animated GIF, WebP or PNG, or a folder of numbered frames)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.gif"]


def test_a_damaged_sound_track_is_refused_with_the_way_out(tmp_path, capsys):
    """A clip whose picture decodes and whose sound does not (its last packets gone): one line saying so
    and how to go on; with --sound drop the picture is stylised, silent."""
    clip = panning_clip(n=12, size=(32, 24), step=1)
    t = np.arange(int(22050 * 12 / 25)) / 22050
    audio = Audio(np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), 22050)
    source = tmp_path / "in.mp4"
    write_clip(clip.frames, Fraction(25), audio, source)
    data = source.read_bytes()
    source.write_bytes(data[:int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    argv = ["video", str(source), "--model", "starry_night", "-o", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot decode its audio" in err and err.endswith("--sound drop stylises the picture without it")
    assert "\n" not in err and not out.exists()
    assert main(argv + ["--sound", "drop"]) == 0
    result = read_clip(out)
    assert result.audio is None and len(result.frames) >= 1
