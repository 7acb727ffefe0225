"""Tests of impasto.cli.audio: `impasto audio` transfers and makes textures, refuses bad input in one line, Ctrl-C."""

import pytest
import torch
from PIL import Image

from conftest import SR, bursts, chords, run_cli, tones
from conftest import bad_audio_files as _bad_inputs
from conftest import write_sound as write
from impasto import Cancel
from impasto.audio.files import read_audio
from impasto.audio.resample import resampled_length


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


TINY = ["--n-fft", "512", "--hop", "128", "--filters", "32", "--iterations", "5", "--griffin-lim-iterations", "5",
        "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("problem", ["silent", "too short", "empty", "not an audio file", "file not found"])
def test_cli_bad_input_one_line_exit_2_no_output(tmp_path, capsys, problem):
    from impasto.cli.main import main

    bad = _bad_inputs(tmp_path)[problem]
    style = write(tmp_path / "style.wav", bursts(0.5))
    out = tmp_path / "out.wav"
    assert main(["audio", str(bad), str(style), "-o", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("impasto: error: ") and str(bad) in err and problem in err
    assert not out.exists()


def test_cli_process_reports_bad_input_in_one_line(tmp_path):
    bad = _bad_inputs(tmp_path)["not an audio file"]
    out = tmp_path / "out.wav"
    code, _, err = run_cli("audio", "--texture", bad, "-o", out, *TINY)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"impasto: error: {bad}: not an audio file")
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["a.wav"], "expected CONTENT STYLE"),
    (["a.wav", "b.wav", "--texture", "b.wav"], "not both"),
    (["a.wav", "b.wav", "--seconds", "3"], "--seconds applies to --texture only"),
    (["--texture", "b.wav", "--init", "content"], "--init content needs a content clip"),
    (["a.wav", "b.wav", "--hop", "2000"], "--hop must be between"),
    (["--texture", "b.wav", "-o", "out.mp4"], "output must end in"),
])
def test_cli_bad_options(tmp_path, capsys, argv, message):
    from impasto.cli.main import main

    for name in ("a.wav", "b.wav"):
        write(tmp_path / name, chords(0.5))
    argv = [str(tmp_path / a) if a.endswith(".wav") else a for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.wav")]
    assert main(["audio", *TINY, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_cli_transfer_and_texture(tmp_path):
    import soundfile

    from impasto.cli.main import main

    content = write(tmp_path / "content.flac", torch.cat([chords(0.8, 44100), tones(0.8, (523,), 44100)]), 44100)
    style = write(tmp_path / "style.ogg", bursts(0.8))
    out, plot = tmp_path / "out.wav", tmp_path / "spectra.png"
    code, _, err = run_cli("audio", content, style, "-o", out, "--plot", plot, "--channels", "keep", *TINY)
    assert code == 0, err
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, resampled_length(round(0.8 * 44100), 44100, SR))
    with Image.open(plot) as img:
        assert img.width > 2 * img.height
    texture = tmp_path / "texture.flac"
    assert main(["audio", "--texture", str(style), "--seconds", "0.6", "-o", str(texture), *TINY]) == 0
    assert soundfile.info(str(texture)).frames == round(0.6 * SR)


def test_cli_interrupt_writes_the_latest_result(tmp_path, monkeypatch):
    import impasto.audio
    from impasto.cli.main import main

    real = impasto.audio.audio_transfer

    def interrupted_at_second(content, style, config, callback=None):
        cancel = Cancel()

        def stop(event):
            if event.done == 2:
                cancel.set()
        return real(content, style, config, callback=stop, cancel=cancel)

    monkeypatch.setattr(impasto.audio, "audio_transfer", interrupted_at_second)
    style = write(tmp_path / "style.wav", bursts(0.5))
    out = tmp_path / "out.wav"
    assert main(["audio", "--texture", str(style), "--seconds", "0.5", "-o", str(out), *TINY]) == 130
    y, rate = read_audio(out)
    assert rate == SR and y.shape == (1, round(0.5 * SR))
