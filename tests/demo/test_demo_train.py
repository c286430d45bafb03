"""Training the demo model: deterministic by seed, exported bundles rank like the torch model, the command.

Full training takes minutes, so these tests train a few dozen steps through the same code path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imagesearch.cli.main import main
from imagesearch.demo.quality import HELD_OUT_SEED, balanced_samples, label_queries, top_k
from imagesearch.model.embedder import Embedder
from imagesearch.model.manifest import load_manifest

pytestmark = pytest.mark.export
torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from imagesearch.demo.train import (  # noqa: E402  (needs torch)
    DEMO_ARCH,
    TrainConfig,
    TrainResult,
    export_demo,
    preprocess_config,
    train,
)
from imagesearch.export import ExportError, export_bundle  # noqa: E402
from imagesearch.model.preprocess import preprocess_batch  # noqa: E402


def short_run(**overrides: Any) -> TrainResult:
    """A training run of a few small steps (seconds)."""
    config: dict[str, Any] = {"steps": 4, "batch_size": 16, "seed": 3} | overrides
    return train(TrainConfig(**config))


@pytest.fixture(scope="module")
def brief(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    """A model trained for 60 steps (it already tells colours apart) and its fp32 + int8 bundle."""
    result = train(TrainConfig(steps=60, seed=5))
    bundle = tmp_path_factory.mktemp("demo") / "bundle"
    export_demo(result.model, bundle, keep_fp32=True)
    return result, bundle


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    threads = torch.get_num_threads()
    first, again, other = short_run(), short_run(), short_run(seed=4)
    assert first.weights_sha256 == again.weights_sha256
    assert first.losses == again.losses
    assert other.weights_sha256 != first.weights_sha256
    assert torch.get_num_threads() == threads  # the run's fixed thread count does not leak out


def test_exported_bundle_ranks_like_the_torch_model(brief: tuple[TrainResult, Path]) -> None:
    result, bundle = brief
    pictures = balanced_samples(3, seed=HELD_OUT_SEED)  # 144 pictures no run trained on
    queries = [text for text, _ in label_queries()]
    model = result.model
    with torch.no_grad():
        pixels = torch.from_numpy(preprocess_batch([p.image for p in pictures], preprocess_config(model)))
        torch_images = model.encode_image(pixels, normalize=True).numpy()
        torch_texts = model.encode_text(open_clip.get_tokenizer(DEMO_ARCH)(queries), normalize=True).numpy()
    expected = top_k(torch_texts @ torch_images.T, 5)
    assert np.unique(expected[:, 0]).size > 10  # the model tells queries apart: rankings mean something

    fp32 = Embedder(bundle, variant="fp32", threads=2)
    onnx_images, onnx_texts = fp32.embed_images([p.image for p in pictures]), fp32.embed_texts(queries)
    assert np.array_equal(top_k(onnx_texts @ onnx_images.T, 5), expected)

    int8 = Embedder(bundle, variant="int8", threads=2)
    quantised = top_k(int8.embed_texts(queries) @ int8.embed_images([p.image for p in pictures]).T, 5)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(quantised, expected, strict=True)])
    assert overlap >= 0.8


def test_train_demo_command_trains_exports_int8_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    assert main(["model", "train-demo", "--out", str(out), "--steps", "3", "--seed", "9"]) == 0
    printed = capsys.readouterr().out
    assert "trained 3 steps" in printed and "precision@5" in printed
    manifest = load_manifest(out)
    assert manifest.architecture == DEMO_ARCH and manifest.variants == ["int8"]
    assert manifest.context_length == 77 and manifest.vocab_size == 49408
    assert sorted(p.name for p in out.iterdir()) == [
        "image.int8.onnx",
        "manifest.json",
        "text.int8.onnx",
        "tokenizer.json",
    ]
    assert Embedder(out).embed_texts(["a red circle"]).shape == (1, manifest.embed_dim)


def test_train_demo_refuses_a_non_empty_directory_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["model", "train-demo", "--out", str(tmp_path), "--steps", "1000000"]) == 2
    assert "must be an empty directory" in capsys.readouterr().err


def test_an_int8_only_export_needs_int8(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="needs int8"):
        export_bundle(
            short_run(steps=1).model, tmp_path / "b", arch=DEMO_ARCH, pretrained="x", keep_fp32=False
        )
