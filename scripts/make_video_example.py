"""Make ``examples/clip.mp4``, the bundled clip for ``impasto video``: 3 s at 25 fps, 320×240, H.264 with
an AAC sound track, from ``examples/tubingen.jpg`` (photograph by Andreas Praefcke, CC BY 3.0).

A camera pans and zooms slowly across the photo while a striped disc crosses the frame in front of
it, hiding and then revealing parts of the background (what optical flow must handle: motion,
occlusion and disocclusion); the sound is a soft A-major chord swelling in and out. Everything is
computed — no randomness — so the same FFmpeg build writes the same file.

    python scripts/make_video_example.py            # writes examples/clip.mp4
    python scripts/make_video_example.py out.mp4    # or elsewhere
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from impasto.video.read import Audio  # noqa: E402
from impasto.video.write import write_clip  # noqa: E402

FPS = 25
SECONDS = 3
SIZE = (320, 240)
RATE = 48_000


def ease(t: float) -> float:
    """0 -> 1 with zero speed at both ends (a camera move that starts and stops gently)."""
    return 0.5 - 0.5 * np.cos(np.pi * min(max(t, 0.0), 1.0))


def camera(photo: Image.Image, t: float) -> np.ndarray:
    """The view at ``t`` in [0, 1]: a 4:3 window sliding right and up while it narrows (zoom in).
    ``photo`` is the 1024 px photograph at half size, so the view is scaled by about 1 — no
    aliasing shimmer (which flow would take for motion, and the encoder would spend bits on)."""
    e = ease(t)
    width = (700 - 140 * e) / 2         # 700 -> 560 px of the 1024 px photo
    cx, cy = (400 + 220 * e) / 2, (420 - 60 * e) / 2
    box = (cx - width / 2, cy - width * 3 / 8, cx + width / 2, cy + width * 3 / 8)
    view = photo.transform(SIZE, Image.Transform.EXTENT, box, resample=Image.Resampling.BICUBIC)
    return np.asarray(view, dtype=np.float32)


def disc(frame: np.ndarray, t: float) -> np.ndarray:
    """A striped orange disc crossing from left to right on a shallow arc (anti-aliased edge)."""
    h, w = frame.shape[:2]
    radius = 38.0
    x = -radius + (w + 2 * radius) * (t - 0.1) / 0.75   # enters at t = 0.1, gone by t = 0.85
    y = 150 - 40 * np.sin(np.pi * np.clip((t - 0.1) / 0.75, 0, 1))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.hypot(xx - x, yy - y)
    alpha = np.clip(radius + 0.5 - dist, 0, 1)[..., None]
    stripes = 0.5 + 0.5 * np.sin(((xx - x) + (yy - y)) * (2 * np.pi / 14))  # moves with the disc
    rings = 0.5 + 0.5 * np.cos(dist * (2 * np.pi / 19))
    shade = 0.55 + 0.3 * stripes[..., None] + 0.15 * rings[..., None]
    colour = np.array([235, 110, 35], np.float32) * shade
    return frame * (1 - alpha) + colour * alpha


def chord(seconds: float) -> np.ndarray:
    """A soft A-major chord (A2 A3 C#4 E4), each note a little left or right, swelling in and out."""
    t = np.arange(int(round(seconds * RATE))) / RATE
    notes = [(110.00, 0.10, 0.0), (220.00, 0.12, -0.3), (277.18, 0.09, 0.4), (329.63, 0.08, -0.1)]
    left = np.zeros_like(t)
    right = np.zeros_like(t)
    for freq, amp, pan in notes:
        tone = amp * (np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(4 * np.pi * freq * t))
        left += tone * (1 - pan) / 2
        right += tone * (1 + pan) / 2
    envelope = np.minimum(1.0, t / 0.6) * np.minimum(1.0, (seconds - t) / 0.8)
    tremolo = 1 + 0.08 * np.sin(2 * np.pi * 4.5 * t)
    return (np.stack([left, right]) * envelope * tremolo).astype(np.float32)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "examples" / "clip.mp4"
    photo = Image.open(ROOT / "examples" / "tubingen.jpg").convert("RGB")
    photo = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.LANCZOS)
    n = FPS * SECONDS
    frames = []
    for i in range(n):
        t = i / (n - 1)
        frames.append(np.clip(disc(camera(photo, t), t) + 0.5, 0, 255).astype(np.uint8))
    write_clip(frames, Fraction(FPS), Audio(chord(SECONDS), RATE), out)
    print(f"wrote {out} ({n} frames, {SIZE[0]}x{SIZE[1]}, {FPS} fps, {out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
