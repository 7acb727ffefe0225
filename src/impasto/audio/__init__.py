"""Audio style transfer and texture synthesis (Ulyanov & Lebedev 2016, "Audio texture synthesis and
style transfer"; Grinstein et al. 2018's style-only variant), in the order of the data flow:

- :mod:`.files`    — WAV/FLAC/OGG in and out (soundfile), mixing and resampling on the way in
- :mod:`.resample` — band-limited (windowed-sinc) sample-rate conversion
- :mod:`.spectral` — STFT, ``log1p|STFT|`` features, Griffin–Lim phase recovery
- :mod:`.network`  — the random 1-D convolution, Gram matrix and the two losses
- :mod:`.run`      — targets, optimisation (:mod:`impasto.optim.loop`) and the result
- :mod:`.plot`     — content / style / result spectrograms side by side (matplotlib)
"""

from .run import AudioResult, audio_transfer, synthesise

__all__ = ["audio_transfer", "synthesise", "AudioResult"]
