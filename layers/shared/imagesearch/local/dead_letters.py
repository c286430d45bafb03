"""The local stack's dead letters: a directory of JSON files, listed and put back for its worker to replay.

Nothing is lost: a message leaves the dead-letter directory only by an atomic rename into the replay
directory, which the running (or next) stack's worker polls.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from imagesearch.ingest.dead_letters import DeadLetter
from imagesearch.local.datadir import DataDir


def list_local(root: Path) -> list[DeadLetter]:
    directory = DataDir(root.resolve()).dead_letters
    letters = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        content = json.loads(path.read_text("utf-8"))
        letters.append(DeadLetter(path.stem, int(content.get("receive_count", 0)), content["body"]))
    return letters


def replay_local(root: Path) -> int:
    """Move dead letters to the replay directory the stack's worker polls (atomic renames)."""
    layout = DataDir(root.resolve())
    if not layout.dead_letters.is_dir():
        return 0
    layout.replay.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(layout.dead_letters.glob("*.json")):
        os.replace(path, layout.replay / path.name)
        count += 1
    return count
