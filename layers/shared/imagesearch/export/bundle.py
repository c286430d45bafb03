"""Write a model bundle (ONNX towers, tokenizer, manifest.json) from an open_clip model.

`export_bundle` takes a model in memory (a model trained here, with its own config, goes through it too);
`export_pretrained` builds one with open_clip (a pretrained tag, a checkpoint file, or random weights) first.
Every bundle is checked before its manifest is written: the fp32 towers against torch on example inputs,
the tokenizer against open_clip's. See docs/model.md.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer, default_bpe
from open_clip.transform import PreprocessCfg, merge_preprocess_dict, to_2tuple

from imagesearch.export.config import ExportError, clean_mode_of, register_config
from imagesearch.export.onnx import (
    IMAGE_INPUT,
    IMAGE_OUTPUT,
    ONNX_OPSET,
    TEXT_INPUT,
    TEXT_OUTPUT,
    ImageTower,
    TextTower,
    export_tower,
    quantize_int8,
    text_is_causal,
)
from imagesearch.logs import logger
from imagesearch.model.manifest import (
    MANIFEST_NAME,
    Manifest,
    TokenizerSpec,
    TowerFiles,
    Variant,
    file_entry,
    write_manifest,
)
from imagesearch.model.tokenizer import CleanMode, ClipTokenizer, build_bpe_tokenizer, trimmed_length

CLIP_VOCAB_SIZE = 49408
TOKENIZER_FILE = "tokenizer.json"
FILES: dict[str, dict[Variant, str]] = {
    "image": {"fp32": "image.onnx", "int8": "image.int8.onnx"},
    "text": {"fp32": "text.onnx", "int8": "text.int8.onnx"},
}
MIN_FP32_COSINE = 0.9999
# Texts that exercise cleaning, Unicode and the special-token path when the tokenizer file is checked.
_CHECK_TEXTS = ["a photo of a cat", "Ünïcödé — “quotes” &amp; emoji 🐈 ＦＵＬＬ", "x<end_of_text>y  \t z", ""]


def export_pretrained(
    arch: str,
    pretrained: str,
    out_dir: Path,
    *,
    int8: bool = False,
    model_config: Mapping[str, Any] | Path | str | None = None,
    cache_dir: Path | None = None,
) -> Manifest:
    """Create an open_clip model (tag, checkpoint file, or "none" for random weights) and export it.

    `model_config` (a dict or a JSON file in open_clip's format) registers `arch` as a custom architecture.
    """
    check_empty(Path(out_dir))  # before minutes of model download and creation
    config = (
        register_config(arch, model_config) if model_config is not None else open_clip.get_model_config(arch)
    )
    if config is None:
        raise ExportError(f"open_clip has no architecture {arch!r}; pass a model config for a custom one")
    clean = clean_mode_of(arch, config)
    weights = None if pretrained.strip().lower() in ("", "none") else pretrained
    with _step("create model", arch=arch, pretrained=pretrained):
        try:
            model, _, _ = open_clip.create_model_and_transforms(
                arch,
                pretrained=weights,
                device="cpu",
                precision="fp32",
                cache_dir=str(cache_dir) if cache_dir else None,
            )
        except (RuntimeError, OSError, ValueError) as e:  # unknown tag, failed download, bad checkpoint
            raise ExportError(f"open_clip cannot create {arch} with weights {pretrained!r}: {e}") from e
    if weights is None:
        label = "none"
    elif Path(weights).is_file():
        label = Path(weights).stem  # a checkpoint file: its name, not the local path
    else:
        label = weights
    return export_bundle(
        model,
        out_dir,
        arch=arch,
        pretrained=label,
        preprocess_cfg=open_clip.get_model_preprocess_cfg(model),
        int8=int8,
        tokenizer_clean=clean,
    )


def export_bundle(
    model: torch.nn.Module,
    out_dir: Path,
    *,
    arch: str,
    pretrained: str,
    preprocess_cfg: Mapping[str, Any] | None = None,
    int8: bool = False,
    keep_fp32: bool = True,
    tokenizer_clean: CleanMode = "lower",
) -> Manifest:
    """Export an in-memory open_clip model (moved to CPU, fp32, eval mode) into an empty `out_dir`.

    With `int8` and `keep_fp32=False` the bundle holds only the int8 towers (the fp32 files are still
    written, checked and quantised, then removed): for small bundles such as the committed demo model.
    """
    if not keep_fp32 and not int8:
        raise ExportError("keep_fp32=False needs int8=True: a bundle needs at least one variant")
    out_dir = _empty_dir(Path(out_dir))
    model = model.to(device="cpu", dtype=torch.float32).eval()
    tokenize_cfg = open_clip.get_model_tokenize_cfg(model)
    context_length = int(tokenize_cfg.get("context_length", 77))
    vocab_size = int(tokenize_cfg.get("vocab_size", CLIP_VOCAB_SIZE))
    if vocab_size != CLIP_VOCAB_SIZE:
        raise ExportError(
            f"text vocabulary of {vocab_size} ids: only CLIP's BPE tokenizer ({CLIP_VOCAB_SIZE}) is supported"
        )
    source = preprocess_cfg if preprocess_cfg is not None else open_clip.get_model_preprocess_cfg(model)
    preprocess = merge_preprocess_dict(PreprocessCfg(), dict(source))
    height, width = to_2tuple(preprocess["size"])

    with _step("hash weights"):
        weights_sha256 = weights_digest(model)
    model_id = make_model_id(arch, pretrained, weights_sha256)

    with _step("write tokenizer"):
        tokenizer_path = out_dir / TOKENIZER_FILE
        build_bpe_tokenizer(Path(default_bpe())).save(str(tokenizer_path))
        tokenizer = ClipTokenizer(tokenizer_path, context_length=context_length, clean=tokenizer_clean)
        _check_tokenizer(tokenizer, SimpleTokenizer(context_length=context_length, clean=tokenizer_clean))

    # the example inputs only trace shapes; a private seeded generator keeps exports reproducible
    # without touching the caller's random state (a training loop may export between epochs)
    pixels = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    padded_ids = tokenizer(_CHECK_TEXTS[:2])
    # A causal tower runs on a query's own tokens (a dynamic sequence axis), others on the padded input.
    sequence = text_is_causal(model)
    ids = torch.from_numpy(padded_ids[:, : max(8, trimmed_length(padded_ids)) if sequence else None])
    towers = {"image": (ImageTower(model), pixels), "text": (TextTower(model, sequence=sequence), ids)}
    names = {"image": (IMAGE_INPUT, IMAGE_OUTPUT), "text": (TEXT_INPUT, TEXT_OUTPUT)}
    expected: dict[str, np.ndarray] = {}
    for tower, (module, example) in towers.items():
        with torch.no_grad():
            expected[tower] = module.eval()(example).numpy()
        with _step(f"export {tower} tower", file=FILES[tower]["fp32"]):
            export_tower(
                module,
                example,
                out_dir / FILES[tower]["fp32"],
                input_name=names[tower][0],
                output_name=names[tower][1],
                max_sequence=context_length if tower == "text" and sequence else None,
            )
        with _step(f"check {tower} tower against torch"):
            cosine = _min_cosine(
                _run(out_dir / FILES[tower]["fp32"], names[tower], example.numpy()), expected[tower]
            )
            if cosine < MIN_FP32_COSINE:
                raise ExportError(f"ONNX {tower} tower differs from torch: cosine {cosine:.6f}")
    if sequence:
        with _step("check the unpadded text tower against the padded one"):
            with torch.no_grad():
                padded = TextTower(model)(torch.from_numpy(padded_ids)).numpy()
            onnx_fp32 = out_dir / FILES["text"]["fp32"]
            for inputs in (padded_ids, padded_ids[:, : trimmed_length(padded_ids)]):
                cosine = _min_cosine(_run(onnx_fp32, names["text"], inputs), padded)
                if cosine < MIN_FP32_COSINE:
                    raise ExportError(f"unpadded text tower differs from the padded one: cosine {cosine:.6f}")

    if expected["image"].shape[-1] != expected["text"].shape[-1]:
        raise ExportError(
            f"towers disagree on the embedding size: {expected['image'].shape} {expected['text'].shape}"
        )
    variants: list[Variant] = ["fp32"]
    if int8:
        for tower, (_, example) in towers.items():
            with _step(f"quantise {tower} tower to int8", file=FILES[tower]["int8"]):
                quantize_int8(out_dir / FILES[tower]["fp32"], out_dir / FILES[tower]["int8"])
                cosine = _min_cosine(
                    _run(out_dir / FILES[tower]["int8"], names[tower], example.numpy()), expected[tower]
                )
            # trained weights quantise worse than random ones: report it, the parity tests hold the bar
            logger.info(f"{tower} int8 vs torch", extra={"min_cosine": round(cosine, 6)})
        variants.append("int8")
    if not keep_fp32:
        for tower in towers:
            fp32 = out_dir / FILES[tower]["fp32"]
            fp32.with_name(fp32.name + ".data").unlink(missing_ok=True)  # external weights (> 2 GB)
            fp32.unlink()
        variants.remove("fp32")

    with _step("write manifest"):
        files = {p.name: file_entry(p) for p in sorted(out_dir.iterdir()) if p.name != MANIFEST_NAME}
        manifest = Manifest(
            model_id=model_id,
            architecture=arch,
            pretrained=pretrained,
            embed_dim=int(expected["image"].shape[-1]),
            image_size=(height, width),
            mean=_per_channel(preprocess["mean"]),
            std=_per_channel(preprocess["std"]),
            # open_clip uses bicubic at inference when the config says "random"
            interpolation="bilinear" if preprocess["interpolation"] == "bilinear" else "bicubic",
            resize_mode=preprocess["resize_mode"],
            fill_color=int(preprocess["fill_color"]),
            context_length=context_length,
            text_sequence="dynamic" if sequence else "padded",
            vocab_size=vocab_size,
            tokenizer=TokenizerSpec(file=TOKENIZER_FILE, clean=tokenizer_clean),
            image=TowerFiles(
                input=IMAGE_INPUT, output=IMAGE_OUTPUT, files={v: FILES["image"][v] for v in variants}
            ),
            text=TowerFiles(
                input=TEXT_INPUT, output=TEXT_OUTPUT, files={v: FILES["text"][v] for v in variants}
            ),
            variants=variants,
            files=files,
            weights_sha256=weights_sha256,
            created_at=datetime.now(UTC),
            open_clip_version=open_clip.__version__,
            torch_version=torch.__version__,
            onnx_opset=ONNX_OPSET,
        )
        write_manifest(manifest, out_dir)
    logger.info(
        "bundle exported", extra={"model_id": model_id, "out_dir": str(out_dir), "variants": variants}
    )
    return manifest


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes): equal weights give equal digests."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def make_model_id(arch: str, pretrained: str, weights_sha256: str) -> str:
    """`{arch}-{pretrained}-{first 8 hex of the weights digest}`, reduced to [A-Za-z0-9._-]."""
    raw = f"{arch}-{pretrained}-{weights_sha256[:8]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


def _per_channel(value: float | tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """open_clip accepts one number for all three channels."""
    values = [float(v) for v in value] if isinstance(value, tuple | list) else [float(value)] * 3
    if len(values) != 3:
        raise ExportError(f"expected 3 channel values for mean/std, got {value!r}")
    return values[0], values[1], values[2]


def _check_tokenizer(ours: ClipTokenizer, theirs: SimpleTokenizer) -> None:
    if not np.array_equal(ours(_CHECK_TEXTS), theirs(_CHECK_TEXTS).numpy()):
        raise ExportError("the written tokenizer does not reproduce open_clip's token ids")


def _run(path: Path, names: tuple[str, str], inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([names[1]], {names[0]: inputs})[0])


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=-1)))


def check_empty(path: Path) -> None:
    """ExportError unless `path` is an empty directory or does not exist (checked before long work)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{path} must be an empty directory or not exist yet")


def _empty_dir(path: Path) -> Path:
    check_empty(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _step(message: str, **extra: Any) -> Iterator[None]:
    """Log a step's start and, when it succeeds, how long it took."""
    logger.info(f"{message}...", extra=extra)
    started = time.perf_counter()
    yield
    logger.info(f"{message}: done", extra={**extra, "seconds": round(time.perf_counter() - started, 2)})
