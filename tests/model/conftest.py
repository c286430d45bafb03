"""Model fixtures: two tiny open_clip models (a ViT and a ModifiedResNet image tower), exported per session.

The ViT goes through `export_bundle` as an in-memory model (the path a model trained here takes), the
ResNet through the `imagesearch model export` command with a config file and a checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.images import encode as encode_image

TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2}
TINY_VIT: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": TEXT_CFG,
}
TINY_RESNET: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 32, "patch_size": None},
    "text_cfg": TEXT_CFG,
}
# The ViT bundle carries non-default preprocessing, so the manifest -> runtime path is exercised.
VIT_PREPROCESS = {
    "size": 64,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bilinear",
    "resize_mode": "shortest",
}


@dataclass
class ExportedModel:
    """A torch model and the bundle exported from it."""

    model: Any  # open_clip.CLIP
    bundle_dir: Path
    preprocess_cfg: dict[str, Any]
    cli_output: str = ""


def _make_image(mode: str = "RGB", size: tuple[int, int] = (80, 60), *, seed: int = 0) -> Image.Image:
    """A deterministic noisy gradient image in any Pillow mode, so resampling has something to do."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1), (x + y) % 256], axis=-1)
    rgb = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
        return Image.merge("RGBA", (*img.split(), Image.fromarray(alpha, "L")))
    if mode == "I;16":
        return Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    if mode == "P":
        return img.quantize(colors=64)
    return img.convert(mode)


ImageFactory = Callable[..., Image.Image]
Encoder = Callable[..., bytes]


@pytest.fixture(scope="session")
def make_image() -> ImageFactory:
    """make_image(mode="RGB", size=(w, h), seed=0): a deterministic test image."""
    return _make_image


@pytest.fixture(scope="session")
def encode() -> Encoder:
    """encode(img, fmt="PNG", **save_params) -> bytes."""
    return encode_image


@pytest.fixture(scope="session")
def vit_export(tmp_path_factory: pytest.TempPathFactory) -> ExportedModel:
    """Tiny ViT CLIP with random weights, exported with int8 through export_bundle."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    from imagesearch.export import export_bundle

    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_VIT).eval()
    bundle_dir = tmp_path_factory.mktemp("vit") / "bundle"
    export_bundle(
        model, bundle_dir, arch="tiny-vit", pretrained="random", preprocess_cfg=VIT_PREPROCESS, int8=True
    )
    return ExportedModel(model=model, bundle_dir=bundle_dir, preprocess_cfg=VIT_PREPROCESS)


@pytest.fixture(scope="session")
def resnet_export(tmp_path_factory: pytest.TempPathFactory) -> ExportedModel:
    """Tiny ModifiedResNet CLIP: a checkpoint file exported by the CLI with --model-config and --int8."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    from imagesearch.cli import model as model_cli

    work = tmp_path_factory.mktemp("resnet")
    config_file = work / "tiny-rn.json"
    config_file.write_text(json.dumps(TINY_RESNET), encoding="utf-8")
    torch.manual_seed(1)
    model = open_clip.CLIP(**TINY_RESNET).eval()
    checkpoint = work / "tiny-rn-weights.pt"
    torch.save(model.state_dict(), checkpoint)

    parser = argparse.ArgumentParser()
    model_cli.register(parser.add_subparsers())
    bundle_dir = work / "bundle"
    args = parser.parse_args(
        ["model", "export", "--arch", "tiny-rn", "--pretrained", str(checkpoint), "--out", str(bundle_dir)]
        + ["--int8", "--model-config", str(config_file)]
    )
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = args.func(args)
    assert code == 0
    return ExportedModel(
        model=model, bundle_dir=bundle_dir, preprocess_cfg={"size": 64}, cli_output=stdout.getvalue()
    )


@pytest.fixture(scope="session", params=["vit", "resnet"])
def exported(request: pytest.FixtureRequest) -> ExportedModel:
    """Each tiny model in turn."""
    fixture = "vit_export" if request.param == "vit" else "resnet_export"
    value: ExportedModel = request.getfixturevalue(fixture)
    return value
