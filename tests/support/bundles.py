"""Model bundles for tests that need a second model without torch."""

from __future__ import annotations

import shutil
from pathlib import Path

from imagesearch.model.manifest import load_manifest, write_manifest


def variant_bundle(source: Path, target: Path, model_id: str) -> Path:
    """Another model without torch: the bundle's files under a new id, its images normalised differently."""
    shutil.copytree(source, target)
    manifest = load_manifest(target)
    write_manifest(manifest.model_copy(update={"model_id": model_id, "mean": (0.5, 0.5, 0.5)}), target)
    return target
