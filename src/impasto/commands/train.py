"""``impasto train``: a feed-forward transform network per style (Johnson et al. 2016), or one network
for several styles (Dumoulin et al. 2017). ``torchrun --nproc_per_node=N -m impasto train ...`` trains
with N DDP processes."""

from __future__ import annotations

import sys

from ..cli import add_config_options, close_bar, config_from_args
from ..config import TrainConfig
from ..imageio import check_writable
from ..progress import ProgressBar


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a fast feed-forward network for one or more styles (Johnson et al.)",
                       description="Train a transform network that stylises a photo in one forward pass. "
                                   "Several STYLE images: one network for all of them (conditional instance "
                                   "normalisation); `impasto fast --mix` blends them.")
    p.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder tree of training photos (e.g. MS-COCO)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt); OUTPUT.ckpt holds checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT.ckpt exactly where it stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p, TrainConfig)
    p.set_defaults(run=cmd_train)


def cmd_train(args) -> int:
    from ..fast.train import Interrupted, Trainer, checkpoint_path, close_distributed, train

    config = config_from_args(args, TrainConfig)
    output = check_writable(args.output, (".pt",), "model file")
    trainer = Trainer(config, args.styles, args.data, output)
    if args.resume:
        trainer.resume()
    per_step = config.batch * trainer.world
    show = not args.quiet and trainer.rank == 0
    bar = ProgressBar(config.steps * per_step, desc="impasto train", unit="img",
                      initial=trainer.step * per_step) if show else None
    try:
        model = train(trainer, callback=bar)
    except Interrupted as stop:
        close_distributed()
        close_bar(bar)
        if trainer.rank == 0:
            print(f"interrupted at step {stop.args[0]}: model so far in {output}, "
                  f"`--resume` continues from {checkpoint_path(output)}", file=sys.stderr)
        return 130
    close_bar(bar)
    close_distributed()
    if trainer.rank == 0 and not args.quiet:
        skipped = len(trainer.data.skipped)
        print(f"wrote {output} ({len(model.styles)} style(s), {trainer.step} steps, {trainer.seconds:.0f} s"
              + (f"; skipped {skipped} unreadable file(s)" if skipped else "") + ")", file=sys.stderr)
    return 0
