"""A real small filesystem to break: a tmpfs that can be filled up or remounted read-only.

Mounting needs root with CAP_SYS_ADMIN, which the development machines and CI have; where it is missing
the tests fail and say so (a skipped fault test would leave the fault untested without anyone noticing).
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = ".filler"  # hidden: the filesystem store's listing skips names that start with a dot


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(path: Path, *, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (created) for the block; always unmounted after it."""
    path.mkdir(parents=True, exist_ok=True)
    result = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if result.returncode != 0:
        pytest.fail(
            "this test mounts a tmpfs to fill it and make it read-only, which needs root with "
            f"CAP_SYS_ADMIN (as on the development machines and in CI): {result.stderr.strip()}"
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> Path:
    """Take every free byte of the filesystem at `path` with one file; returns it (delete it to free)."""
    filler = path / FILLER
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096, b"\0"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


@contextmanager
def disk_full(path: Path) -> Iterator[Path]:
    """The filesystem at `path` is full for the block; the space comes back after it."""
    filler = fill(path)
    try:
        yield filler
    finally:
        filler.unlink()


def remount(path: Path, mode: str, *, timeout: float = 10) -> None:
    """Remount the filesystem at `path` "ro" or "rw". A read-only remount fails while a file is open for
    writing (EBUSY): under traffic, try again until a moment when none is."""
    deadline = time.monotonic() + timeout
    while (result := _mount("-o", f"remount,{mode}", str(path))).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"could not remount {path} {mode}: {result.stderr.strip()}")
        time.sleep(0.005)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The filesystem at `path` is read-only for the block."""
    remount(path, "ro")
    try:
        yield
    finally:
        remount(path, "rw")
