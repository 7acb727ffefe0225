"""Training a transform network against a fixed VGG-19 loss network (Johnson, Alahi & Fei-Fei,
"Perceptual Losses for Real-Time Style Transfer and Super-Resolution", arXiv 1603.08155, section 3),
on the objective ``impasto transfer`` minimises — the paper's, as Ulyanov et al.'s texture networks
(arXiv 1603.03417) train on it — so that the network's pictures are judged by what they learned.

Per step: a batch of photo crops x, the network's output ŷ = f_W(x), and per crop (the mean over the batch)
  α · s · ½ Σ (F_l(ŷ) − F_l(x))²  +  β · Σ_l w_l E_l,   E_l = 1/(4 N_l²) Σ (G_l(ŷ)/M_l − A_l/M_l)²
(Gatys et al. eq. 1, 4, 5, 7; w_l = 1/count), content on relu4_2, style on relu1_1 … relu5_1, average
pooling, α/β = 1e-3; s makes the content sum per position as at 512 px (impasto.loss.terms.content_scale:
a crop stands for its share of a 4:3 picture at 512 px). A_l is measured on the style image at ``--side``,
and the photos are scaled to about that long side before the crops are cut (impasto.fast.data), so the
strokes the network learns have the size they have in ``impasto transfer --size SIDE``. Johnson et al.'s
own normalisation (Grams over C·H·W, a mean-squared-error on them) weights relu5_1's style 65,536 times
less than the paper does: networks trained on it scored 4x the paper's objective of an optimisation.
Several styles: each photo of the batch is assigned one style, which picks its Gram targets and its
conditional instance-norm row (Dumoulin et al. 2017). Adam updates only the transform network.

Under ``torchrun`` (WORLD_SIZE > 1) every process trains a DDP replica (gloo on CPU, nccl on GPU) on
its own photos; gradients are averaged, so every rank holds the same weights after each step.

With ``--temporal-weight`` > 0 each step also takes a batch of consecutive frame pairs of real footage
(``--frames``): both frames through the network in the photos' styles, and :func:`temporal_loss` of the
two outputs along the inputs' flow (Huang et al. 2017; Gao et al. 2018, ReCoNet) added to the total, so
the network learns to be steady by itself.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..config import TrainConfig, check_options
from ..errors import DivergedError, ImpastoError
from ..atomic import atomic_write
from ..image import flow
from ..image.imageio import load_image, open_image, resize_to_tensor, save_image
from ..loss.losses import total_variation
from ..loss.terms import REFERENCE_SIDE, per_position_scale
from ..job import Callback, Cancel, Interrupted, Reporter, running
from ..runtime import BASE_BYTES, IMAGE_BYTES_PER_PIXEL, check_memory, resolve_device, resolve_precision, set_threads
from ..net.vgg import VGG19, check_layers
from .data import FramePairs, PhotoBatches, find_photos
from .model import FastModel, load_model, save_model
from .network import TransformNet

CHECKPOINT_FORMAT = "impasto-fast-checkpoint/1"
VALIDATION_PHOTOS = 64  # at most this many validation photos are read (the first in file order)
TEMPORAL_SCALE = 255.0 ** 2  # the temporal loss on 0-255 pixel values, as the video optimisation's
CROP_REFERENCE = REFERENCE_SIDE * REFERENCE_SIDE * 3 // 4  # a crop stands for its share of a 4:3 picture at 512 px


@dataclass
class Saved:
    """What a stopped training run leaves (the ``partial`` of its :class:`Interrupted`): the step
    reached, and the checkpoint (``--resume`` continues from it exactly) and model written then."""

    step: int
    checkpoint: Path
    model: Path


def batch_gram(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, C)``: each image's Gram ``Σ_k F_ik F_jk`` divided by its M = H·W
    positions (eq. 3 over M, as :func:`impasto.loss.losses.gram` with ``normalise``)."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def position_scale(photos: torch.Tensor, crops: bool) -> float:
    """``s`` of the content term: the pixels of the picture a batch stands for at 512 px over its own
    (:func:`impasto.loss.terms.content_scale`, ``per-position``): a whole photo stands for itself at
    512 px (s = 1 at 512 px, as the benchmarks' evaluator), a crop for its share of a 4:3 picture."""
    h, w = photos.shape[-2:]
    return CROP_REFERENCE / (h * w) if crops else per_position_scale((w, h))


def paper_losses(feats: dict[str, torch.Tensor], content_target: torch.Tensor, grams: dict[str, torch.Tensor],
                 content_layer: str, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's content and style losses of a batch, each the mean over its images:
    ``s · ½ Σ (F − P)²`` on ``content_layer`` (eq. 1) and ``Σ_l E_l / count`` (eq. 4, 5) against
    ``grams``, ``(B, C, C)`` per layer (each image's own style's A/M)."""
    diff = feats[content_layer].float() - content_target.float()
    content = scale * 0.5 * diff.pow(2).flatten(1).sum(1).mean()
    style = sum((batch_gram(feats[layer]) - target).pow(2).sum((1, 2)).mean() / (4.0 * target.shape[-1] ** 2)
                for layer, target in grams.items()) / len(grams)
    return content, style


def temporal_loss(previous: torch.Tensor, current: torch.Tensor, backward: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """The temporal loss of a network's outputs for frames t-1 and t, ``(B, C, H, W)``:

        L_temp = 1/D Σ_k c_k (O_t − W(O_{t−1}))_k²,   D = C·H·W (and the mean over the batch),

    with W the backward warp along the *inputs'* flow from frame t to t-1 (``backward``, ``(B, H, W, 2)``
    in pixels, x then y: ``W(O)(x) = O(x + f(x))``, bilinear, border replicate, pixel centres at integers,
    as :func:`impasto.image.flow.warp`) and c the reliability of that flow (``mask``, ``(B, 1, H, W)`` in
    [0, 1], :func:`impasto.image.flow.reliability`). This is the temporal loss of Huang et al. 2017
    ("Real-Time Neural Style Transfer for Videos", CVPR: the squared difference of the output and the
    warped previous output over the reliable pixels, divided by D) and the output-level temporal loss
    of ReCoNet (Gao et al. 2018, arXiv 1807.01197) without ReCoNet's luminance warping constraint
    (its subtraction of the input's own luminance change). A mean, not a sum, so a weight means the
    same at any crop size and batch. Differentiable with respect to both outputs
    (:func:`impasto.image.flow.warp`, a flow per sample); the flow and the mask are constants."""
    b, _, h, w = current.shape
    if tuple(backward.shape) != (b, h, w, 2) or tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(f"outputs {tuple(current.shape)} want a flow of ({b}, {h}, {w}, 2) and a mask of "
                         f"({b}, 1, {h}, {w}); got {tuple(backward.shape)} and {tuple(mask.shape)}")
    warped = flow.warp(previous, backward)
    return (mask.to(current.device, current.dtype) * (current - warped).pow(2)).mean()


def checkpoint_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.ckpt")


def preview_path(output: str | os.PathLike) -> Path:
    out = Path(output)
    return out.with_name(out.stem + ".preview.png")


class Trainer:
    """Everything one training process holds: networks, targets, optimiser, data and its place."""

    def __init__(self, config: TrainConfig, styles: list[str | os.PathLike], data: str | os.PathLike,
                 output: str | os.PathLike):
        check_training_options(config, styles)
        self.config, self.output = config, Path(output)
        self.rank, self.world = _init_distributed(config)
        self.device = resolve_device(config.device) if self.world == 1 else _rank_device(config)
        precision = resolve_precision(config.precision, self.device)
        self.bf16 = precision == "bf16"  # the transform network under autocast; losses and Adam in fp32
        self.style_names = [Path(s).stem for s in styles]
        self.data = PhotoBatches(data, config.crop, config.batch, config.seed, self.rank, self.world, config.side)
        self.vgg = VGG19(config.weights, pooling="avg").to(self.device).set_precision(precision, channels_last=True)
        self.targets = self._style_targets(styles)
        torch.manual_seed(config.seed)
        self.net = TransformNet(config.width, len(styles)).to(self.device)
        if config.init_model:
            self._start_from(config.init_model)
        self.model = (DistributedDataParallel(self.net) if self.world > 1 else self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.step, self.seconds = 0, 0.0
        self.validation = Validation(config.val_data, config.side) if config.val_data else None
        self.curve: list[dict[str, float]] = []   # one entry per validation pass: step and mean losses
        self.pairs = (FramePairs(config.frames, config.crop, config.batch, config.seed, self.rank, self.world,
                                 config.side)
                      if config.temporal_weight > 0 else None)  # off: nothing of it is read or drawn

    def _start_from(self, path: str) -> None:
        """Fine-tuning: the weights of a model file (``--init-model``), same width and number of styles."""
        start = load_model(path)
        if start.net.width != self.config.width or len(start.styles) != len(self.style_names):
            raise ImpastoError(f"{path}: a model of width {start.net.width:g} for {len(start.styles)} style(s); this "
                               f"run trains width {self.config.width:g} for {len(self.style_names)}")
        self.net.load_state_dict(start.net.state_dict())

    # ------------------------------------------------------------ loss (Gatys et al. eq. 1, 4, 5, 7)

    @torch.no_grad()
    def _style_targets(self, styles) -> dict[str, torch.Tensor]:
        """Per style layer, ``(S, C, C)``: each style image's Grams over M at ``--side``."""
        grams = {layer: [] for layer in self.config.style_layers}
        for style in styles:
            image = load_image(style, long_side=self.config.side).to(self.device)
            feats = self.vgg(image, self.config.style_layers)
            for layer in self.config.style_layers:
                grams[layer].append(batch_gram(feats[layer])[0])
        return {layer: torch.stack(g) for layer, g in grams.items()}

    def style_ids(self, step: int) -> torch.Tensor:
        """The style of each photo in this rank's batch: styles taken in turn over the stream."""
        first = (step * self.world + self.rank) * self.config.batch
        return torch.arange(first, first + self.config.batch) % len(self.style_names)

    def losses(self, photos: torch.Tensor, ids: torch.Tensor, network=None, pairs=None,
               crops: bool = True) -> dict[str, torch.Tensor]:
        """The paper's objective of the network (``network``, or the training replica) on ``photos``
        (``crops``: training crops; else whole photos, as the validation's), each in the style ``ids``
        picks; with ``pairs`` (a :meth:`FramePairs.batch`, as many pairs as photos) also the weighted
        temporal loss of the network on them, in the same styles (the frames go through the network in
        the photos' forward pass: one pass, as DDP wants)."""
        c = self.config
        mix = torch.nn.functional.one_hot(ids, len(self.style_names)).float().to(self.device)
        if pairs is not None:
            n = photos.shape[0]
            photos_only = photos
            photos = torch.cat([photos, pairs[0].to(self.device), pairs[1].to(self.device)])
            mix = torch.cat([mix, mix, mix])
        with (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()):
            out = (network or self.model)(photos, mix)
        if pairs is not None:
            out, previous, current = out[:n], out[n:2 * n], out[2 * n:]
            photos = photos_only
        feats = self.vgg(out, {c.content_layer, *c.style_layers})
        with torch.no_grad():
            target = self.vgg(photos, [c.content_layer])[c.content_layer]
        scale = position_scale(photos, crops)
        grams = {layer: self.targets[layer][ids.to(self.device)] for layer in c.style_layers}
        content, style = paper_losses(feats, target, grams, c.content_layer, scale)
        terms = {"content": c.content_weight * content, "style": c.style_weight * style}
        if c.tv_weight:
            terms["tv"] = c.tv_weight * total_variation(out.float()) / out.shape[0]
        if pairs is not None:  # λ s Σ c (O_t − W(O_t-1))², 0-255, as the video optimisation's temporal term
            size = current[0].numel()
            terms["temporal"] = c.temporal_weight * scale * size * TEMPORAL_SCALE * temporal_loss(
                previous.float(), current.float(), pairs[2].to(self.device), pairs[3].to(self.device))
        terms["total"] = sum(terms.values())
        return terms

    def lr_at(self, step: int) -> float:
        """Adam's learning rate at ``step`` (0-based): ``--lr`` halved every ``--lr-halving`` steps; a
        function of the step alone, so a resumed run (even one resumed with a new schedule) follows it."""
        halving = self.config.lr_halving
        return self.config.lr * (0.5 ** (step // halving) if halving else 1.0)

    def train_step(self) -> dict[str, float]:
        photos = self.data.batch(self.step).to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        pairs = self.pairs.batch(self.step) if self.pairs is not None else None
        terms = self.losses(photos, self.style_ids(self.step), pairs=pairs)
        if not torch.isfinite(terms["total"]):  # nothing of this step is kept or written
            raise DivergedError(f"training diverged at step {self.step + 1}: the loss is NaN or inf; "
                                f"try a lower --lr, --style-weight or --content-weight")
        terms["total"].backward()
        self.optimizer.step()
        if not all(torch.isfinite(w).all() for w in self.net.parameters()):  # the step overflowed
            raise DivergedError(f"training diverged at step {self.step + 1}: the weights became NaN or inf; "
                                f"try a lower --lr, --style-weight or --content-weight (the last checkpoint is kept)")
        self.step += 1
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The mean content, style and total loss over the validation photos, each in every style
        (the network itself, not its DDP replica, in eval mode, no gradient); appended to :attr:`curve`
        with the step."""
        self.net.eval()
        sums: dict[str, float] = {}
        for photo in self.validation.photos():
            for style in range(len(self.style_names)):
                terms = self.losses(photo.to(self.device), torch.tensor([style]), self.net, crops=False)
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
        self.net.train()
        count = len(self.validation.files) * len(self.style_names)
        point = {"step": self.step, **{key: value / count for key, value in sums.items()}}
        self.curve.append(point)
        return point

    # ------------------------------------------------------------ checkpoints, model, previews

    def checkpoint(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "step": self.step, "seconds": self.seconds,
                "styles": self.style_names, "config": asdict(self.config),
                "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "skipped": sorted(str(p) for p in self.data.skipped), "validation": self.curve,
                "frames_skipped": sorted(str(p) for p in self.pairs.skipped) if self.pairs else []}

    def save(self) -> None:
        """Checkpoint and model so far (rank 0 only), both written atomically."""
        if self.rank != 0:
            return
        state = self.checkpoint()
        atomic_write(checkpoint_path(self.output), lambda tmp: torch.save(state, tmp))
        save_model(self.fast_model(), self.output)

    def resume(self) -> None:
        path = checkpoint_path(self.output)
        if not path.is_file():
            raise ImpastoError(f"{path}: no checkpoint to resume from")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise ImpastoError(f"{path}: cannot read checkpoint ({type(exc).__name__})") from None
        if state.get("format") != CHECKPOINT_FORMAT or state["styles"] != self.style_names:
            raise ImpastoError(f"{path}: checkpoint of another run (styles {state.get('styles')})")
        kept = {k: state["config"].get(k) for k in ("width", "batch", "crop", "side", "seed", "content_layer")}
        now = {k: getattr(self.config, k) for k in kept}
        if kept != now:
            raise ImpastoError(f"{path}: checkpoint was trained with {kept}, this run asks for {now}")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds = state["step"], state["seconds"]
        self.data.skipped = {Path(p) for p in state["skipped"]}
        self.curve = list(state.get("validation", []))
        if self.pairs is not None:  # a checkpoint of a run without frames (or of an older release) has none
            self.pairs.skipped = {Path(p) for p in state.get("frames_skipped", [])}

    def fast_model(self) -> FastModel:
        meta = {"steps": self.step, "seconds": round(self.seconds, 1), "world_size": self.world,
                "skipped_files": len(self.data.skipped), "config": asdict(self.config), "validation": self.curve}
        if self.pairs is not None:
            meta["skipped_frame_files"] = len(self.pairs.skipped)
        return FastModel(self.net, self.style_names, meta)

    @torch.no_grad()
    def write_preview(self, photo: torch.Tensor) -> None:
        """The preview photo stylised in each style, side by side."""
        if self.rank != 0:
            return
        self.net.eval()
        n = len(self.style_names)
        tiles = [self.net(photo.to(self.device), torch.eye(n)[i]).float().cpu() for i in range(n)]
        self.net.train()
        save_image(torch.cat([photo.cpu(), *tiles], dim=-1).clamp(0, 1), preview_path(self.output))

    def preview_photo(self) -> torch.Tensor:
        photo = open_image(self.config.preview) if self.config.preview else self.data.first_photo()
        return resize_to_tensor(photo, long_side=self.config.side)  # the size it is made for


class Validation:
    """The validation photos: whole photos at ``side`` px (not crops), read before training starts (an
    unreadable one is one clear line then, not an error hours later), never trained on."""

    def __init__(self, folder: str | os.PathLike, side: int):
        self.files = find_photos(folder)[:VALIDATION_PHOTOS]
        self._photos = [resize_to_tensor(open_image(path), long_side=side) for path in self.files]

    def photos(self) -> list[torch.Tensor]:
        return self._photos


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _init_distributed(config: TrainConfig) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        set_threads()
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if config.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if not os.environ.get("OMP_NUM_THREADS"):  # share the machine's cores between its processes
        from ..runtime import physical_cores

        torch.set_num_threads(max(1, physical_cores() // local))
    return dist.get_rank(), dist.get_world_size()


def _rank_device(config: TrainConfig) -> torch.device:
    if config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available()):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def check_training_options(config: TrainConfig, styles) -> None:
    check_options(config)
    if config.temporal_weight > 0 and not config.frames:
        raise ImpastoError("--temporal-weight needs --frames DIR: a folder of consecutive frame pairs "
                           "(python scripts/gather_photos.py --out DIR writes them into DIR/frames/train)")
    if not styles:
        raise ImpastoError("give at least one style image")
    check_layers([config.content_layer, *config.style_layers])
    for style in styles:
        open_image(style)  # one clear line for a missing or unreadable style image
    device = resolve_device(config.device)
    if device.type == "cpu":  # the transform network and the loss network, forward and backward
        precision = resolve_precision(config.precision, device)
        images = config.batch * (3 if config.temporal_weight > 0 else 1)  # a frame pair per photo, too
        check_memory(BASE_BYTES + 2 * IMAGE_BYTES_PER_PIXEL[precision] * images * config.crop ** 2,
                     f"a batch of {images} crops of {config.crop} px", "try a smaller --batch or --crop")


def train(trainer: Trainer, callback: Callback | None = None, cancel: Cancel | None = None) -> FastModel:
    """Run ``trainer`` up to ``config.steps``, reporting images seen (Progress unit "img").

    Setting ``cancel`` (or Ctrl-C) saves a checkpoint and the model so far and raises
    :class:`Interrupted` whose ``partial`` is :class:`Saved`.
    """
    c = trainer.config
    photo = trainer.preview_photo() if c.preview_every else None
    per_step = c.batch * trainer.world
    with running("train", c.steps * per_step, callback, cancel, unit="img", done=trainer.step * per_step) as reporter:
        while trainer.step < c.steps:
            if reporter.cancel.is_set():
                trainer.save()
                raise Interrupted(Saved(trainer.step, checkpoint_path(trainer.output), trainer.output))
            _one_step(trainer, c, per_step, photo, reporter)
    trainer.save()
    return trainer.fast_model()


def _one_step(trainer: Trainer, c: TrainConfig, per_step: int, photo, reporter: Reporter) -> None:
    """One training step, then the progress event, checkpoint and preview that fall due."""
    start = time.perf_counter()
    losses = trainer.train_step()
    trainer.seconds += time.perf_counter() - start
    reporter(losses, f"step {trainer.step}/{c.steps}", units=per_step)
    due = trainer.step % c.val_every == 0 or trainer.step == c.steps
    if trainer.validation is not None and trainer.rank == 0 and due:
        point = trainer.validate()  # a unit-less event: the curve's new point, as figures that are no loss
        reporter({}, f"step {trainer.step}/{c.steps} validation", units=0,
                 extra={f"val_{key}": value for key, value in point.items() if key != "step"})
    if trainer.step % c.checkpoint_every == 0 and trainer.step < c.steps:
        trainer.save()
    if photo is not None and trainer.step % c.preview_every == 0:
        trainer.write_preview(photo)
