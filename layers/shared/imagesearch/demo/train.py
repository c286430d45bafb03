"""Train the demo model: a small open_clip CLIP on generated shapes, then export it as a bundle.

The model is open_clip's own `CLIP` (a ModifiedResNet image tower and a transformer text tower with CLIP's
tokenizer and context length 77), built by `open_clip.create_model` from a registered config and trained
with `open_clip.loss.ClipLoss`. Images go through the runtime's preprocessing (the bundle's eval transform),
captions through open_clip's tokenizer. Everything is seeded and `torch.use_deterministic_algorithms` is on
with a fixed thread count, so one seed gives one set of weights (on the same CPU and torch version). Needs
the export extra. See docs/demo-model.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss

from imagesearch.demo.shapes import ShapeSample, caption_variants, generate, partial_captions
from imagesearch.export.bundle import check_empty, export_bundle, weights_digest
from imagesearch.export.config import register_config
from imagesearch.logs import logger
from imagesearch.model.manifest import Manifest
from imagesearch.model.preprocess import PreprocessConfig, preprocess_batch

DEMO_ARCH = "demo-shapes-rn"
DEMO_PRETRAINED = "shapes"
# The text tower's token embedding (49408 x width) dominates the bundle: width 64 keeps the int8 text tower
# near 3 MB. The image tower is a ModifiedResNet, which learnt shapes and colours far better than a small
# ViT in the same time (see docs/demo-model.md).
DEMO_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
StepCallback = Callable[[int, float], object]
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Hyper-parameters of a demo training run; the defaults made the committed bundle."""

    steps: int = 2000
    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    threads: int = 2  # results are bit-identical only for the same thread count
    partial_caption_rate: float = 0.1  # captions naming only a colour or only a shape
    companion_rate: float = 0.0  # pictures with a second object
    image_size: int = 64
    model_config: dict[str, Any] = field(default_factory=lambda: dict(DEMO_MODEL_CONFIG))
    log_every: int = 50


@dataclass
class TrainResult:
    """The trained model (eval mode, CPU) and how the run went."""

    model: Any  # open_clip.CLIP
    config: TrainConfig
    losses: list[float]
    seconds: float
    weights_sha256: str

    @property
    def final_loss(self) -> float:
        """Mean loss over the last 50 steps (single steps are noisy)."""
        tail = self.losses[-50:]
        return float(sum(tail) / len(tail)) if tail else math.nan


def build_model(config: TrainConfig) -> Any:
    """A freshly initialised demo model (open_clip.CLIP), seeded by `config.seed`."""
    register_config(DEMO_ARCH, config.model_config)
    torch.manual_seed(config.seed)
    return open_clip.create_model(DEMO_ARCH, pretrained=None, output_dict=True)


def preprocess_config(model: Any) -> PreprocessConfig:
    """The eval transform the bundle's manifest will describe (the runtime's, so training sees its input)."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"]
    height, width = (size, size) if isinstance(size, int) else size
    mean, std = cfg["mean"], cfg["std"]
    return PreprocessConfig(
        size=(height, width),
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
        resize_mode=cfg.get("resize_mode", "shortest"),
        fill_color=int(cfg.get("fill_color", 0)),
    )


def train(config: TrainConfig, *, on_step: StepCallback | None = None) -> TrainResult:
    """Train a demo model from scratch on a fresh generated batch per step."""
    started = time.perf_counter()
    with _deterministic(config.threads):
        model = build_model(config)
        tokenizer = open_clip.get_tokenizer(DEMO_ARCH)
        image_cfg = preprocess_config(model)
        loss_fn = ClipLoss()
        optimizer = torch.optim.AdamW(
            _param_groups(model, config.weight_decay), lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config))
        caption_rng = np.random.default_rng([config.seed, 2])
        losses: list[float] = []
        model.train()
        for step, (batch, pixels) in enumerate(_prefetched(_batches(config, image_cfg)), start=1):
            images = torch.from_numpy(pixels)
            texts = tokenizer([_pick_caption(item, caption_rng, config) for item in batch])
            out = model(images, texts)
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():  # CLIP clamps the temperature at 100
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(loss.item()))
            if on_step is not None:
                on_step(step, losses[-1])
            if step % config.log_every == 0 or step == config.steps:
                elapsed = time.perf_counter() - started
                logger.info(
                    "training",
                    extra={
                        "step": step,
                        "steps": config.steps,
                        "loss": round(sum(losses[-config.log_every :]) / len(losses[-config.log_every :]), 4),
                        "elapsed_s": round(elapsed, 1),
                        "eta_s": round(elapsed / step * (config.steps - step), 1),
                    },
                )
        model.eval()
        digest = weights_digest(model)
    return TrainResult(
        model=model,
        config=config,
        losses=losses,
        seconds=time.perf_counter() - started,
        weights_sha256=digest,
    )


def train_demo(
    out_dir: Path,
    config: TrainConfig | None = None,
    *,
    keep_fp32: bool = False,
    on_step: StepCallback | None = None,
) -> tuple[Manifest, TrainResult]:
    """Train with `config`, then export the model as a bundle into `out_dir` (checked empty first)."""
    check_empty(Path(out_dir))  # before minutes of training
    result = train(config or TrainConfig(), on_step=on_step)
    manifest = export_demo(result.model, out_dir, keep_fp32=keep_fp32)
    return manifest, result


def export_demo(model: Any, out_dir: Path, *, keep_fp32: bool = False) -> Manifest:
    """Export a demo model through the same path as any open_clip model (int8 only unless `keep_fp32`)."""
    return export_bundle(
        model,
        out_dir,
        arch=DEMO_ARCH,
        pretrained=DEMO_PRETRAINED,
        int8=True,
        keep_fp32=keep_fp32,
    )


def _batches(
    config: TrainConfig, image_cfg: PreprocessConfig
) -> Iterator[tuple[list[ShapeSample], np.ndarray]]:
    """Step s uses samples [s * batch, (s + 1) * batch) of stream `seed`: fresh pictures every step."""
    for step in range(config.steps):
        batch = generate(
            config.batch_size,
            seed=config.seed,
            size=config.image_size,
            start=step * config.batch_size,
            companion_rate=config.companion_rate,
        )
        yield batch, preprocess_batch([item.image for item in batch], image_cfg)


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, the next one prepared on a worker thread meanwhile.

    Drawing a batch takes about a quarter of a step and Pillow and numpy release the GIL, so it can
    overlap with torch (the gain was within this machine's noise). Items stay in order and depend only
    on their index: the weights are bit-identical with and without it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _pick_caption(item: ShapeSample, rng: np.random.Generator, config: TrainConfig) -> str:
    # one fixed caption form generalises badly to short queries: each picture gets a random wording
    forms = partial_captions(item) if rng.random() < config.partial_caption_rate else caption_variants(item)
    return forms[int(rng.integers(len(forms)))]


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """As open_clip's training: no weight decay on gains, biases, norms and the temperature."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        skip = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if skip else decay).append(param)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def _warmup_cosine(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the run; the caller's settings come back after."""
    previous = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
