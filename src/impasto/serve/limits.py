"""What ``impasto serve`` takes, and how it says no: :class:`Limits`, the one place for the server's
limits and timings, and :class:`Refused`, a request refused with its HTTP status and one line —
answered as ``{"error": "..."}``, as the command line's errors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The server's limits and timings: the one place for its defaults."""

    max_upload_bytes: int = 25_000_000   # one uploaded file
    max_pixels: int = 40_000_000         # one uploaded image, width x height
    max_queue: int = 20                  # jobs waiting (the running one not counted); 429 past it
    max_size: int = 8192                 # a job's output long side (--size): print sizes too (docs/print.md)
    fast_size: int = 1024                # a fast job without --size: the photo's long side, at most this
    max_iterations: int = 5000           # an optimisation's --iterations
    max_styles: int = 4                  # paintings of one job
    max_json_bytes: int = 65_536         # a job's JSON body
    preview_every: int = 2               # iterations between live images (preview.jpg)
    ping_s: float = 15.0                 # a comment line on a quiet event stream
    cancel_wait_s: float = 10.0          # POST .../cancel waits this long for the running job to stop
    image_checks: int = 2                # uploads decoded at once (each up to max_pixels x 3 bytes)
    max_clip_seconds: float = 10.0       # one uploaded clip: its length (frames over the frame rate)
    max_clip_frames: int = 250           # ... its frames
    max_clip_pixels: int = 2_100_000     # ... one frame, width x height (1920x1080 fits); the bytes: max_upload_bytes


class Refused(Exception):
    """A request refused: its status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
