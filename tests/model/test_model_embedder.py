"""The runtime embedder: lazy, thread-safe loading, variants, errors for bad bundles and bad images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagesearch.config import load_settings
from imagesearch.errors import ImageRejected, ModelUnavailable, TooManyPixels
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import Runtime

from .conftest import ExportedModel

ImageFactory = Callable[..., Image.Image]
Encoder = Callable[..., bytes]


@pytest.fixture
def vit_bundle(vit_export: ExportedModel) -> Path:
    return vit_export.bundle_dir


@pytest.fixture
def bundle_copy(vit_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(vit_bundle, tmp_path / "bundle"))


@pytest.mark.export
def test_facts_come_from_the_manifest_without_sessions(vit_bundle: Path) -> None:
    embedder = Embedder(vit_bundle)
    assert embedder.dim == 64
    assert embedder.model_id.startswith("tiny-vit-random-")
    assert embedder.variant == "int8"  # the default when the bundle has it
    assert embedder._sessions == {}


@pytest.mark.export
def test_sessions_are_created_per_tower_on_first_use(vit_bundle: Path) -> None:
    embedder = Embedder(vit_bundle, threads=1)
    embedder.embed_texts(["a cat"])
    assert set(embedder._sessions) == {"text"}
    embedder.embed_images([Image.new("RGB", (20, 20))])
    assert set(embedder._sessions) == {"text", "image"}


@pytest.mark.export
def test_concurrent_first_calls_share_one_session(vit_bundle: Path) -> None:
    embedder = Embedder(vit_bundle, threads=1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: embedder.embed_texts([f"text {i % 2}"]), range(16)))
    assert len(embedder._sessions) == 1
    np.testing.assert_allclose(results[0], results[2], atol=1e-6)


@pytest.mark.export
def test_empty_inputs(vit_bundle: Path) -> None:
    embedder = Embedder(vit_bundle)
    assert embedder.embed_texts([]).shape == (0, 64)
    assert embedder.embed_images([]).shape == (0, 64)
    with pytest.raises(TypeError):
        embedder.embed_texts("not a list")


@pytest.mark.export
def test_bad_images_raise_project_errors(vit_bundle: Path, make_image: ImageFactory, encode: Encoder) -> None:
    embedder = Embedder(vit_bundle, max_image_pixels=10_000)
    good = encode(make_image("RGB", (50, 50)), "JPEG")
    with pytest.raises(ImageRejected) as info:
        embedder.embed_images([good, good[: len(good) // 2]])
    assert info.value.reason == "truncated"
    with pytest.raises(ImageRejected):
        embedder.embed_images([b"<svg xmlns='http://www.w3.org/2000/svg'/>"])
    with pytest.raises(TooManyPixels):
        embedder.embed_images([encode(make_image("RGB", (200, 200)), "PNG")])


@pytest.mark.export
def test_every_mode_embeds(vit_bundle: Path, make_image: ImageFactory, encode: Encoder) -> None:
    embedder = Embedder(vit_bundle)
    images: list[bytes | Image.Image] = [
        make_image(mode) for mode in ("RGBA", "LA", "P", "CMYK", "I;16", "1")
    ]
    images += [
        encode(make_image("RGBA"), "PNG"),
        encode(make_image("I;16"), "PNG"),
        encode(make_image("CMYK"), "JPEG"),
    ]
    out = embedder.embed_images(images)
    assert out.shape == (len(images), 64) and np.isfinite(out).all()


@pytest.mark.export
def test_unknown_variant(vit_bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((vit_bundle / "manifest.json").read_text())
    assert Embedder(vit_bundle, variant="fp32").variant == "fp32"
    fp32_only = tmp_path / "fp32"
    fp32_only.mkdir()
    for name in ("image.onnx", "text.onnx", "tokenizer.json"):
        shutil.copy(vit_bundle / name, fp32_only / name)
    manifest["variants"] = ["fp32"]
    for tower in ("image", "text"):
        manifest[tower]["files"] = {"fp32": manifest[tower]["files"]["fp32"]}
    manifest["files"] = {k: v for k, v in manifest["files"].items() if "int8" not in k}
    (fp32_only / "manifest.json").write_text(json.dumps(manifest))
    assert Embedder(fp32_only).variant == "fp32"
    with pytest.raises(ModelUnavailable, match="no int8 variant"):
        _ = Embedder(fp32_only, variant="int8").variant


@pytest.mark.export
def test_tampered_file_is_refused(bundle_copy: Path) -> None:
    with (bundle_copy / "text.int8.onnx").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelUnavailable, match="sha256"):
        Embedder(bundle_copy).embed_texts(["a cat"])
    Embedder(bundle_copy).embed_images([Image.new("RGB", (8, 8))])  # the other tower is still fine


@pytest.mark.export
def test_broken_onnx_with_matching_manifest(bundle_copy: Path) -> None:
    (bundle_copy / "image.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelUnavailable, match="onnxruntime cannot load"):
        Embedder(bundle_copy, variant="fp32", verify=False).embed_images([Image.new("RGB", (8, 8))])


def test_missing_or_invalid_bundle(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="manifest.json is missing"):
        _ = Embedder(tmp_path / "nowhere").dim
    (tmp_path / "manifest.json").write_text('{"model_id": 3}')
    with pytest.raises(ModelUnavailable, match="not a valid manifest"):
        _ = Embedder(tmp_path).model_id


def test_the_configured_model_without_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="is not a directory"):
        _ = Runtime(load_settings(model_dir=tmp_path / "missing")).configured_model
    from imagesearch.config import DEMO_MODEL_DIR

    if not DEMO_MODEL_DIR.is_dir():
        with pytest.raises(ModelUnavailable, match="demo bundle"):
            _ = Runtime(load_settings()).configured_model


@pytest.mark.export
def test_the_configured_model_is_model_dir(vit_bundle: Path) -> None:
    runtime = Runtime(load_settings(model_dir=vit_bundle, ort_threads=1))
    embedder = runtime.configured_model
    assert embedder is runtime.configured_model
    assert isinstance(embedder, Embedder)
    assert embedder.bundle_dir == vit_bundle.resolve()
    assert embedder._threads == 1


RUNTIME_MODULES = ["imagesearch.imaging", "imagesearch.model.embedder", "imagesearch.model.manifest"]
NO_TORCH_CHECK = """
import sys
{body}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "open_clip"))
assert not heavy, heavy
print("ok")
"""


def _run_isolated(body: str) -> None:
    code = NO_TORCH_CHECK.format(body=textwrap.dedent(body))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_runtime_modules_do_not_import_torch() -> None:
    _run_isolated("\n".join(f"import {m}" for m in RUNTIME_MODULES))


@pytest.mark.export
def test_embedding_does_not_import_torch(vit_bundle: Path, make_image: ImageFactory, encode: Encoder) -> None:
    image_file = vit_bundle.parent / "probe.jpg"
    image_file.write_bytes(encode(make_image("RGB", (90, 70)), "JPEG"))
    _run_isolated(
        f"""
        from pathlib import Path
        from imagesearch.model.embedder import Embedder
        embedder = Embedder({str(vit_bundle)!r})
        assert embedder.embed_texts(["a cat"]).shape == (1, 64)
        assert embedder.embed_images([Path({str(image_file)!r}).read_bytes()]).shape == (1, 64)
        """
    )
