"""A small reader of the repository's Dockerfile: its stages, their instructions, ARG defaults substituted,
so tests can do what the image build does (tests/deploy/test_container.py) without drifting from it."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from imagesearch.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str  # the rest of the (joined) line, variables substituted

    @property
    def exec_form(self) -> list[str]:
        """The JSON array of an ENTRYPOINT, CMD or RUN in exec form."""
        value = json.loads(self.arguments)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value), self
        return value

    @property
    def words(self) -> list[str]:
        return shlex.split(self.arguments)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"the stage {self.name or self.base} has no {keyword}"
        return found[-1]

    @property
    def workdir(self) -> str:
        return self.last("WORKDIR").arguments

    @property
    def env(self) -> dict[str, str]:
        """ENV NAME=value pairs of the stage, in order (the later wins)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in instruction.words:
                name, sep, value = word.partition("=")
                assert sep, f"ENV {instruction.arguments!r}: use the NAME=value form"
                values[name] = value
        return values

    def copies(self) -> list[tuple[list[str], str]]:
        """(sources, destination) of each COPY from the build context (COPY --from=... left out)."""
        result = []
        for instruction in self.all("COPY"):
            words = instruction.words
            if any(w.startswith("--from=") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            result.append((words[:-1], words[-1]))
        return result


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined; comments and blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation"
    return lines


def parse(path: Path = DOCKERFILE, build_args: dict[str, str] | None = None) -> list[Stage]:
    """The stages of the Dockerfile, ARG defaults (or `build_args`) substituted into every instruction."""
    variables: dict[str, str] = {}
    stages: list[Stage] = []

    def substitute(text: str) -> str:
        return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)

    for line in _logical_lines(path.read_text("utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG":
            name, _, default = rest.strip().partition("=")
            variables[name] = (build_args or {}).get(name, default)
            continue
        if keyword == "FROM":
            words = substitute(rest).split()
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=alias))
            continue
        assert stages, f"{keyword} before the first FROM"
        # Only ARGs are substituted: ENV's $PATH and the like are the image's own.
        stages[-1].instructions.append(Instruction(keyword, substitute(rest.strip())))
    return stages
