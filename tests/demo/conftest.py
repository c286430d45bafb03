"""Demo model fixtures: the committed bundle through the runtime Embedder (no torch), measured once."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.config import DEMO_MODEL_DIR
from imagesearch.demo.quality import QualityReport, evaluate
from imagesearch.model.embedder import Embedder


@pytest.fixture(scope="session")
def demo_bundle() -> Path:
    """The committed demo bundle; its absence is a failure, not a skip."""
    assert (DEMO_MODEL_DIR / "manifest.json").is_file(), f"the demo bundle is missing from {DEMO_MODEL_DIR}"
    return DEMO_MODEL_DIR


@pytest.fixture(scope="session")
def demo_embedder(demo_bundle: Path) -> Embedder:
    """The committed model as the API runs it (its default variant)."""
    return Embedder(demo_bundle, threads=2)


@pytest.fixture(scope="session")
def held_out_quality(demo_embedder: Embedder) -> QualityReport:
    """Retrieval quality on 576 freshly generated pictures (12 per colour and shape) of an unseen seed."""
    return evaluate(demo_embedder)
