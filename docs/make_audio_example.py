"""Make the two input clips of the audio example in docs/audio.md.

    .venv/bin/python docs/make_audio_example.py [--out out/audio-example]

Writes ``speech.wav`` (espeak-ng reading a sentence, 22,050 Hz mono) and ``plucks.flac`` (a plucked-
string arpeggio synthesised by Karplus–Strong, 44,100 Hz stereo, so that the run also resamples and
mixes down). Needs ``espeak-ng`` on the PATH (Debian: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np

SENTENCE = "Neural style transfer, painted on sound."
ARPEGGIO_HZ = (196.0, 246.9, 293.7, 392.0, 293.7, 246.9)  # G major: G3 B3 D4 G4 D4 B3
NOTE_SECONDS, RATE = 0.25, 44100


def pluck(freq: float, seconds: float, rng: np.random.Generator, decay: float = 0.996) -> np.ndarray:
    """Karplus & Strong (1983): a noise burst circulating in a delay line with an averaging filter."""
    period = int(round(RATE / freq))
    line = rng.uniform(-1, 1, period)
    out = np.empty(int(seconds * RATE))
    for i in range(out.size):
        out[i] = line[i % period]
        line[i % period] = decay * 0.5 * (line[i % period] + line[(i + 1) % period])
    return out


def plucks(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """``(N, 2)``: the arpeggio, each note ringing on under the next, panned slightly apart."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    mix = np.zeros((n + RATE, 2))
    for k in range(int(seconds / NOTE_SECONDS)):
        start = int(k * NOTE_SECONDS * RATE)
        note = pluck(ARPEGGIO_HZ[k % len(ARPEGGIO_HZ)], 1.0, rng)
        pan = 0.35 + 0.3 * (k % 2)
        mix[start:start + note.size] += note[:, None] * [pan, 1 - pan]
    mix = mix[:n]
    return 0.9 * mix / np.abs(mix).max()


def main() -> None:
    import soundfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/audio-example", help="folder for the clips")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found (Debian: apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out / "speech.wav"), SENTENCE], check=True)
    soundfile.write(str(out / "plucks.flac"), plucks(), RATE)
    print(f"wrote {out / 'speech.wav'} and {out / 'plucks.flac'}")


if __name__ == "__main__":
    main()
