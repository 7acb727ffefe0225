"""``impasto audio``: audio style transfer and texture synthesis (Ulyanov & Lebedev 2016)."""

from __future__ import annotations

from .main import add_config_options, add_run_options, config_from_args, run_job
from ..config import AudioConfig
from ..errors import ImpastoError


def add_parser(sub) -> None:
    p = sub.add_parser("audio", help="audio style transfer and texture synthesis on spectrograms "
                                     "(Ulyanov & Lebedev)",
                       description="Give CONTENT the sound texture of STYLE, or with --texture STYLE make "
                                   "a new stretch of STYLE's texture from noise. WAV, FLAC or OGG in and out.")
    p.add_argument("clips", nargs="*", metavar="CONTENT STYLE", help="content clip, then style clip")
    p.add_argument("--texture", metavar="STYLE", help="synthesise --seconds of this clip's texture from noise")
    p.add_argument("-o", "--output", required=True, help="output audio (.wav, .flac, .ogg)")
    p.add_argument("--plot", metavar="FILE", help="also draw content, style and result spectrograms "
                                                  "(.png, .jpg, .pdf, .svg)")
    add_run_options(p)
    add_config_options(p, AudioConfig)
    p.set_defaults(run=cmd_audio)


def _inputs(args) -> tuple[str | None, str]:
    """(content or None, style) from the positional clips and ``--texture``."""
    if args.texture is not None:
        if args.clips:
            raise ImpastoError("give either CONTENT STYLE or --texture STYLE, not both")
        return None, args.texture
    if len(args.clips) != 2:
        raise ImpastoError(f"expected CONTENT STYLE (or --texture STYLE), got {len(args.clips)} file(s)")
    if args.seconds is not None:
        raise ImpastoError("--seconds applies to --texture only; a transfer has the content's length")
    return args.clips[0], args.clips[1]


def _writer(config: AudioConfig, output, plot, interrupted: bool = False):
    """``write`` for the runner: the audio (and the spectrogram plot) of a result, atomically."""
    from ..audio.files import save_audio
    from ..audio.plot import save_spectrograms

    def write(result) -> str:
        save_audio(result.samples, result.sample_rate, output)
        if plot is not None:
            panels = [(name, result.spectrograms[name]) for name in ("content", "style", "result")
                      if name in result.spectrograms]
            save_spectrograms(panels, result.sample_rate, config.hop, plot)
        if interrupted:
            return f"latest result written to {output}"
        seconds = result.samples.shape[-1] / result.sample_rate
        return (f"wrote {output} ({seconds:.2f} s, {result.samples.shape[0]} channel(s), "
                f"{result.sample_rate} Hz)" + (f" and {plot}" if plot else ""))

    return write


def cmd_audio(args) -> int:
    from ..audio import audio_transfer
    from ..audio.files import check_audio_output
    from ..audio.plot import check_plot_output

    content, style = _inputs(args)
    config = config_from_args(args, AudioConfig)
    output = check_audio_output(args.output, (content, style))
    plot = None if args.plot is None else check_plot_output(args.plot, (content, style, output))
    return run_job(args, lambda show: audio_transfer(content, style, config, callback=show),
                   _writer(config, output, plot), _writer(config, output, plot, interrupted=True))
