"""``impasto video``: a clip stylised without flicker — by optimisation with a temporal loss (Ruder
et al. 2016) or by a trained network with flow-guided blending; the sound kept."""

from __future__ import annotations

from .main import add_config_options, add_run_options, config_from_args, run_job
from ..config import TransferConfig, VideoConfig, check_options
from ..errors import ImpastoError


def add_parser(sub) -> None:
    p = sub.add_parser("video", help="stylise a video (or GIF, WebP, folder of frames) without flicker, sound kept",
                       description="impasto video CLIP STYLE... -o OUT (optimisation, every frame tied to the ones "
                                   "before it along the optical flow, Ruder et al. 2016) or impasto video CLIP "
                                   "--model NAME -o OUT (a trained network, blended along the flow). CLIP and OUT: "
                                   "a video (.mp4 .mov .mkv …), an animated .gif or .webp, or a folder of numbered "
                                   "frames. Finished frames are kept beside OUT; the same command after Ctrl-C goes "
                                   "on where it stopped. Needs PyAV and OpenCV: pip install 'impasto[video]'.")
    p.add_argument("clip", help="the video, animated GIF/WebP or folder of numbered frames")
    p.add_argument("styles", nargs="*", metavar="style", help="style image(s) (optimisation mode)")
    p.add_argument("-o", "--output", required=True, help="output video, .gif, .webp or folder")
    p.add_argument("--model", help="a trained model (.pt, .onnx or a bundled name): the fast mode")
    p.add_argument("--mix", help="fast mode: weights over a multi-style model's styles, e.g. 0.7,0.3")
    p.add_argument("--report", action="store_true",
                   help="also print the warping error E_warp of the result and of the input (Lai et al. 2018)")
    p.add_argument("--preset", metavar="NAME", help="optimisation mode: a named set of transfer options")
    p.add_argument("--presets-file", metavar="FILE", help="your own presets (TOML)")
    add_run_options(p)
    add_config_options(p, TransferConfig)
    add_config_options(p, VideoConfig)
    p.set_defaults(run=cmd_video)


def _job(args, clip, config: TransferConfig, video: VideoConfig, output):
    """The job for the mode asked for: ``show -> Stylised``."""
    from ..fast.model import resolve_model_path
    from ..fast.stylise import load_runner, parse_mix
    from ..video.fast import fast_video
    from ..video.optimise import optimise_video

    if args.model is None:
        if not args.styles:
            raise ImpastoError("give style image(s) (optimisation) or --model NAME (a trained network)")
        return lambda show: optimise_video(clip, args.styles, config, video, output, show)
    if args.styles:
        raise ImpastoError("give either style images or --model, not both")
    if config.color in ("match", "ink"):
        raise ImpastoError(f"--color {config.color} needs style images; with --model use transfer or luminance")
    runner = load_runner(args.model, config.precision, config.device)
    mix = parse_mix(args.mix, runner.styles)
    keep = config.color_space if config.color == "luminance" else None
    size = args.size  # a network keeps the clip's own size unless --size is given
    return lambda show: fast_video(clip, runner, mix, size, video, output, show, keep_colors=keep,
                                   model_key=str(resolve_model_path(args.model)))


def cmd_video(args) -> int:
    from ..presets import config_for
    from ..image import flow
    from ..video.cache import forget, sized_frames
    from ..video.read import read_clip, require_av
    from ..video.write import check_video_output, keeps_sound, write_clip

    config = config_from_args(args, TransferConfig, base=config_for(args.preset, args.presets_file))
    video = config_from_args(args, VideoConfig)
    check_options(config)  # in both modes: --size 8 is refused with --model too, not written at 8x6
    check_options(video)
    require_av(), flow.require_opencv()  # the video extra: one line with the pip command if missing
    output = check_video_output(args.output, [args.clip, *args.styles])
    try:
        clip = read_clip(args.clip, video.start, video.duration, folder_fps=video.frame_rate,
                         sound=video.sound == "keep")
    except ImpastoError as exc:  # a damaged sound track need not stop the picture
        if "cannot decode its audio" in str(exc):
            raise ImpastoError(f"{exc}; --sound drop stylises the picture without it") from None
        raise
    job = _job(args, clip, config, video, output)

    def write(result) -> str:
        write_clip(result.frames, clip.fps, clip.audio, output)
        forget(result)
        h, w = result.frames[0].shape[:2]
        line = (f"wrote {output} ({len(result.frames)} frames, {w}x{h}, {float(clip.fps):g} fps"
                + (", with the clip's audio" if clip.audio is not None and keeps_sound(output) else "") + ")")
        if args.report:
            inputs = sized_frames(clip, max(w, h))
            line += (f"; warping error E_warp {flow.warping_error(result.frames, inputs):.5f} "
                     f"(the input itself: {flow.warping_error(inputs, inputs):.5f})")
        return line

    def keep(partial) -> str:
        return (f"{len(partial.frames)} of {partial.total} frames kept in {partial.folder}; "
                f"run the same command again to go on")

    return run_job(args, job, write, keep)
