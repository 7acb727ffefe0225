"""``impasto train``: a feed-forward transform network per style (Johnson et al. 2016), or one network
for several styles (Dumoulin et al. 2017). ``torchrun --nproc_per_node=N -m impasto train ...`` trains
with N DDP processes."""

from __future__ import annotations

from .main import add_config_options, add_run_options, config_from_args, run_job
from ..config import TrainConfig
from ..image.imageio import check_writable


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a fast feed-forward network for one or more styles (Johnson et al.)",
                       description="Train a transform network that stylises a photo in one forward pass. "
                                   "Several STYLE images: one network for all of them (conditional instance "
                                   "normalisation); `impasto fast --mix` blends them.")
    p.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder tree of training photos (e.g. MS-COCO)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt); OUTPUT.ckpt holds checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT.ckpt exactly where it stopped")
    add_run_options(p)
    add_config_options(p, TrainConfig)
    p.set_defaults(run=cmd_train)


def cmd_train(args) -> int:
    from ..fast.train import Trainer, close_distributed, train

    config = config_from_args(args, TrainConfig)
    output = check_writable(args.output, (".pt",), "model file", args.styles)
    trainer = Trainer(config, args.styles, args.data, output)
    if args.resume:
        trainer.resume()
    if trainer.rank != 0:  # under torchrun, only the first process shows progress and speaks
        args.quiet, args.progress = True, "bar"

    def job(show):
        try:
            return train(trainer, callback=show)
        finally:
            close_distributed()

    def write(model) -> str:  # train() wrote the model and the checkpoint
        skipped = len(trainer.data.skipped)
        last = trainer.curve[-1] if trainer.curve else None
        return (f"wrote {output} ({len(model.styles)} style(s), {trainer.step} steps, {trainer.seconds:.0f} s"
                + (f"; skipped {skipped} unreadable file(s)" if skipped else "")
                + (f"; validation loss {last['total']:.4g} at step {last['step']}" if last else "") + ")")

    def keep(saved) -> str:
        return (f"at step {saved.step}: model so far in {saved.model}, `--resume` continues from "
                f"{saved.checkpoint}")

    return run_job(args, job, write, keep)
