"""ONNX parity: the exported towers give open_clip's embeddings (fp32 cosine >= 0.9999, int8 >= 0.99)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from imagesearch.model.embedder import Embedder
from imagesearch.model.manifest import load_manifest

from .conftest import TINY_VIT, ExportedModel

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.export

ImageFactory = Callable[..., Image.Image]
Encoder = Callable[..., bytes]
TEXTS = [
    "a photo of a cat",
    "A DOG running on the beach at sunset",
    "naïve café ☕ in 東京",
    "",
    "emoji 🐶🐱 and “quotes” &amp; more",
    "a very long caption " * 30,
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.sum(a * b, axis=-1)


def torch_texts(exported: ExportedModel, texts: list[str]) -> np.ndarray:
    ids = open_clip.tokenizer.SimpleTokenizer()(texts)
    with torch.no_grad():
        return exported.model.encode_text(ids, normalize=True).numpy()


def torch_images(exported: ExportedModel, images: list[Image.Image]) -> np.ndarray:
    cfg = exported.preprocess_cfg
    transform = open_clip.image_transform(
        cfg["size"],
        is_train=False,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        interpolation=cfg.get("interpolation"),
        resize_mode=cfg.get("resize_mode"),
    )
    pixels = torch.stack([transform(img) for img in images])
    with torch.no_grad():
        return exported.model.encode_image(pixels, normalize=True).numpy()


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    sizes = [(64, 64), (100, 80), (80, 130), (300, 200), (37, 41)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def test_fp32_text_tower_matches_torch(exported: ExportedModel) -> None:
    embedder = Embedder(exported.bundle_dir, variant="fp32", threads=2)
    assert cosines(embedder.embed_texts(TEXTS), torch_texts(exported, TEXTS)).min() >= 0.9999


def test_fp32_image_tower_matches_torch(
    exported: ExportedModel, photos: list[Image.Image], encode: Encoder
) -> None:
    embedder = Embedder(exported.bundle_dir, variant="fp32", threads=2)
    expected = torch_images(exported, photos)
    assert cosines(embedder.embed_images(photos), expected).min() >= 0.9999
    # through the bytes path too (lossless PNG, so the same pixels)
    as_png = [encode(img, "PNG") for img in photos]
    assert cosines(embedder.embed_images(as_png), expected).min() >= 0.9999


def test_int8_close_to_fp32(exported: ExportedModel, photos: list[Image.Image]) -> None:
    fp32 = Embedder(exported.bundle_dir, variant="fp32", threads=2)
    int8 = Embedder(exported.bundle_dir, variant="int8", threads=2)
    assert cosines(int8.embed_texts(TEXTS), fp32.embed_texts(TEXTS)).min() >= 0.99
    assert cosines(int8.embed_images(photos), fp32.embed_images(photos)).min() >= 0.99


@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_dynamic_batch_and_normalised_outputs(
    exported: ExportedModel, photos: list[Image.Image], batch_size: int
) -> None:
    embedder = Embedder(exported.bundle_dir, variant="fp32", threads=2)
    texts = embedder.embed_texts(TEXTS, batch_size=batch_size)
    images = embedder.embed_images(photos, batch_size=batch_size)
    reference = embedder.embed_texts(TEXTS, batch_size=64)
    np.testing.assert_allclose(texts, reference, atol=1e-5)
    for out in (texts, images):
        assert out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_manifest_describes_the_model(exported: ExportedModel) -> None:
    manifest = load_manifest(exported.bundle_dir)
    manifest.verify(exported.bundle_dir)
    assert manifest.embed_dim == 64 and manifest.image_size == (64, 64) and manifest.context_length == 77
    assert manifest.variants == ["fp32", "int8"]
    assert set(manifest.files) == {
        "image.onnx",
        "text.onnx",
        "image.int8.onnx",
        "text.int8.onnx",
        "tokenizer.json",
    }
    assert manifest.model_id.startswith(f"{manifest.architecture}-{manifest.pretrained}-")
    assert manifest.model_id.endswith(manifest.weights_sha256[:8])
    assert manifest.onnx_opset == 18 and manifest.open_clip_version == open_clip.__version__
    expected_interpolation = exported.preprocess_cfg.get("interpolation", "bicubic")
    assert manifest.interpolation == expected_interpolation


def test_model_id_follows_the_weights(vit_export: ExportedModel) -> None:
    from imagesearch.export.bundle import make_model_id, weights_digest

    digest = weights_digest(vit_export.model)
    assert make_model_id("tiny-vit", "random", digest) == load_manifest(vit_export.bundle_dir).model_id
    changed = open_clip.CLIP(**TINY_VIT)
    assert weights_digest(changed) != digest
    assert make_model_id("hf-hub:org/model x", "tag", digest) == f"hf-hub-org-model-x-tag-{digest[:8]}"


@pytest.mark.slow
def test_vit_b_32_random_weights(tmp_path_factory: pytest.TempPathFactory) -> None:
    from imagesearch.export import export_pretrained

    out = tmp_path_factory.mktemp("vitb32") / "bundle"
    manifest = export_pretrained("ViT-B-32", "none", out, int8=True)
    assert manifest.embed_dim == 512 and manifest.image_size == (224, 224)
    fp32 = Embedder(out, variant="fp32", threads=2)
    int8 = Embedder(out, variant="int8", threads=2)
    assert cosines(int8.embed_texts(TEXTS), fp32.embed_texts(TEXTS)).min() >= 0.99


def test_the_unpadded_text_tower_gives_the_padded_vectors(vit_export: ExportedModel) -> None:
    """CLIP's text tower is causal and pooled at the end-of-text token: run on a query's own tokens it
    gives what the 77-token input gives (the tokenizer's corpus, one query at a time and in a batch)."""
    from .test_model_tokenizer import HANDWRITTEN

    manifest = load_manifest(vit_export.bundle_dir)
    assert manifest.text_sequence == "dynamic"
    corpus = [*HANDWRITTEN, *TEXTS]
    embedder = Embedder(vit_export.bundle_dir, variant="fp32", threads=2)
    embedder.warm_up("text")
    tokenizer = embedder._tokenizer  # noqa: SLF001
    assert tokenizer is not None
    session = embedder._session("text")  # noqa: SLF001
    padded_ids = tokenizer(corpus)
    padded = session.run([manifest.text.output], {manifest.text.input: padded_ids})[0]
    assert cosines(embedder.embed_texts(corpus), padded).min() >= 0.9999
    one_by_one = np.concatenate([embedder.embed_texts([text]) for text in corpus])
    assert cosines(one_by_one, padded).min() >= 0.9999
    assert cosines(padded, torch_texts(vit_export, corpus)).min() >= 0.9999  # and what open_clip gives


def test_a_tower_that_is_not_causal_keeps_the_padded_input(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SigLIP-style text towers attend both ways (no causal mask) and pool elsewhere: padding matters."""
    from imagesearch.export import export_bundle
    from imagesearch.export.onnx import TextTower, text_is_causal

    text_cfg = {**TINY_VIT["text_cfg"], "no_causal_mask": True, "pool_type": "last"}
    model = open_clip.CLIP(**{**TINY_VIT, "text_cfg": text_cfg}).eval()
    assert not text_is_causal(model)
    with pytest.raises(ValueError, match="causal"):
        TextTower(model, sequence=True)
    out = tmp_path_factory.mktemp("bidirectional") / "bundle"
    manifest = export_bundle(model, out, arch="tiny-bidirectional", pretrained="random")
    assert manifest.text_sequence == "padded"
    embedder = Embedder(out, variant="fp32", threads=2)
    assert embedder.embed_texts(["a red circle"]).shape == (1, 64)
