"""layers/deps/requirements.txt (the dependency layer) agrees with pyproject.toml's runtime dependencies."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from imagesearch.config import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
# The python3.12 Lambda runtime ships boto3; the layer must not carry a second copy.
PROVIDED_BY_RUNTIME = {"boto3"}


def pyproject_runtime_requirements() -> list[Requirement]:
    """The dependencies pyproject.toml lists under its "runtime of the functions" comment."""
    text = PYPROJECT.read_text("utf-8")
    block = re.search(r"# --- runtime of the functions.*?\n(.*?)\n\s*# ---", text, re.S)
    assert block is not None, "pyproject.toml lost its '# --- runtime of the functions' section"
    return [Requirement(item) for item in re.findall(r'^\s*"([^"]+)",', block.group(1), re.M)]


def layer_requirements() -> list[Requirement]:
    lines = LAYER_REQUIREMENTS.read_text("utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def by_name(requirements: list[Requirement]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in requirements}


def test_the_layer_carries_exactly_the_runtime_dependencies() -> None:
    runtime = by_name(pyproject_runtime_requirements())
    layer = by_name(layer_requirements())
    assert set(layer) == set(runtime) - PROVIDED_BY_RUNTIME
    for name, requirement in layer.items():
        assert requirement.extras == runtime[name].extras, name


def test_layer_versions_are_pinned_within_pyprojects_ranges() -> None:
    runtime = by_name(pyproject_runtime_requirements())
    for name, requirement in by_name(layer_requirements()).items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert runtime[name].specifier.contains(spec.version), (
            f"{name}=={spec.version} outside {runtime[name]}"
        )
