"""layers/deps/requirements.txt (the dependency layer) agrees with pyproject.toml's runtime dependencies."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from imagesearch.config import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
# The gazetteer, apart: it requires scipy, which neither the layer (prune.py) nor the image (--no-deps) keeps.
PLACES_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "places.txt"
# The python3.12 Lambda runtime ships boto3; the layer must not carry a second copy.
PROVIDED_BY_RUNTIME = {"boto3"}


def pyproject_runtime_requirements() -> list[Requirement]:
    """The dependencies pyproject.toml lists under its "runtime of the functions" comment."""
    text = PYPROJECT.read_text("utf-8")
    block = re.search(r"# --- runtime of the functions.*?\n(.*?)\n\s*# ---", text, re.S)
    assert block is not None, "pyproject.toml lost its '# --- runtime of the functions' section"
    return [Requirement(item) for item in re.findall(r'^\s*"([^"]+)",', block.group(1), re.M)]


def layer_requirements(*files: Path) -> list[Requirement]:
    """What the layer build installs (layers/deps/Makefile): requirements.txt and places.txt."""
    lines = [
        line
        for f in files or (LAYER_REQUIREMENTS, PLACES_REQUIREMENTS)
        for line in f.read_text("utf-8").splitlines()
    ]
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def by_name(requirements: list[Requirement]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in requirements}


def test_the_layer_carries_exactly_the_runtime_dependencies() -> None:
    runtime = by_name(pyproject_runtime_requirements())
    layer = by_name(layer_requirements())
    assert set(layer) == set(runtime) - PROVIDED_BY_RUNTIME
    for name, requirement in layer.items():
        assert requirement.extras == runtime[name].extras, name


def test_the_gazetteer_is_apart_and_installed_without_its_dependencies() -> None:
    (places,) = layer_requirements(PLACES_REQUIREMENTS)
    assert canonicalize_name(places.name) == "reverse-geocode"
    assert "reverse-geocode" not in by_name(layer_requirements(LAYER_REQUIREMENTS))
    makefile = (REPO_ROOT / "layers" / "deps" / "Makefile").read_text("utf-8")
    assert "-r requirements.txt -r places.txt" in makefile and "places.txt prune.py" in makefile  # the key
    dockerfile = (REPO_ROOT / "Dockerfile").read_text("utf-8")
    assert "RUN pip install --no-deps -r layers/deps/places.txt" in dockerfile


def test_layer_versions_are_pinned_within_pyprojects_ranges() -> None:
    runtime = by_name(pyproject_runtime_requirements())
    for name, requirement in by_name(layer_requirements()).items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert runtime[name].specifier.contains(spec.version), (
            f"{name}=={spec.version} outside {runtime[name]}"
        )


CONTAINER_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "container.txt"
MIGRATE_REQUIREMENTS = REPO_ROOT / "functions" / "migrate" / "requirements.txt"
# What a container needs beyond the layer: boto3 (Lambda's runtime gave it), the CloudEvents SDK of POST
# /events (no Lambda handler imports it), the HTTP server, Alembic for
# `imagesearch migrate`, and SQLAlchemy, Alembic's own dependency, pinned as the migrate function pins it.
CONTAINER_EXTRAS = {"boto3", "cloudevents", "uvicorn", "alembic", "sqlalchemy"}


def container_requirements() -> tuple[list[str], list[Requirement]]:
    """(the files container.txt includes with -r, its own requirements)."""
    includes, own = [], []
    for line in CONTAINER_REQUIREMENTS.read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            includes.append(line[3:].strip())
        else:
            own.append(Requirement(line))
    return includes, own


def test_the_container_carries_the_layer_and_what_lambda_gave_the_functions() -> None:
    includes, own = container_requirements()
    assert includes == ["requirements.txt"]
    assert set(by_name(own)) == CONTAINER_EXTRAS
    assert PROVIDED_BY_RUNTIME <= set(by_name(own))


def test_container_versions_are_the_suites_and_within_pyprojects_ranges() -> None:
    import tomllib
    from importlib.metadata import version

    project = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    declared = by_name([Requirement(item) for item in project["dependencies"]])
    migrate_pins = by_name(
        [Requirement(line) for line in MIGRATE_REQUIREMENTS.read_text("utf-8").splitlines() if "==" in line]
    )
    for name, requirement in by_name(container_requirements()[1]).items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert spec.version == version(name), f"{name}=={spec.version}; the suite runs {version(name)}"
        if name in declared:
            assert declared[name].specifier.contains(spec.version), f"{name} outside {declared[name]}"
            assert requirement.extras == declared[name].extras, name
        else:
            assert name in migrate_pins, f"{name} is in neither pyproject.toml nor the migrate function"
        if name in migrate_pins:
            assert migrate_pins[name].specifier == requirement.specifier, name
