"""The compiled reference (bench/reference/, Go) as bench/search.py and bench/search_ab.py run it: built once
into bench/.cache/, started on the bench's database with the app's own statements
(bench/_reference_queries.py), and checked to answer as the app does before it is measured.

It builds in GOPATH mode against Debian's packages, with no module download:

    apt-get install golang-go golang-github-jackc-pgx-v4-dev
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from _search_app import BENCH_DIR, AppServer, free_port

SOURCE = BENCH_DIR / "reference" / "main.go"
GOPATH = Path("/usr/share/gocode")  # Debian's golang-*-dev packages
SIGNING_SECRET = "bench-signing-secret"  # the app's workers get it too (bench/_search_server.py)
_TOOK = re.compile(rb'"took_ms":[0-9.eE+-]+')


def build_reference() -> Path:
    """The reference's binary, built when its source changed; a clear error when Go or pgx is missing."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src" / "github.com" / "jackc" / "pgconn").is_dir():
        raise SystemExit(
            "the compiled reference needs Go and pgx's pgconn: apt-get install golang-go "
            "golang-github-jackc-pgx-v4-dev (or run with --no-reference)"
        )
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = BENCH_DIR / ".cache" / "reference" / f"reference-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": str(GOPATH),
            "GOCACHE": str(binary.parent / "gocache"),
            "GOFLAGS": "",
        }
        subprocess.run([go, "build", "-o", str(binary), "."], cwd=SOURCE.parent, env=env, check=True)
    return binary


class reference_server(AppServer):  # noqa: N801 - used as a context manager
    def __init__(self, url: str, queries: Path, args: argparse.Namespace, tmp: Path) -> None:
        """The reference on `url`, answering the bench's queries (`queries`: their texts and vectors) with
        the app's statements under the app's settings (`args.candidates`, `args.ef_search`)."""
        binary = build_reference()
        statements = tmp / "reference-queries.json"
        # In a process of its own: it configures the app's runtime from the environment, as a worker does.
        subprocess.run(
            [
                sys.executable,
                str(BENCH_DIR / "_reference_queries.py"),
                "--database-url",
                url,
                "--queries",
                str(queries),
                "--out",
                str(statements),
                "--candidates",
                str(args.candidates),
                "--ef-search",
                str(args.ef_search),
                "--signing-secret",
                SIGNING_SECRET,
            ],
            cwd=BENCH_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        command = [str(binary), "-queries", str(statements), "-database-url", url, "-port", str(port)]
        super().__init__(command, port)


def same_answers(app: str, reference: str, bodies: list[dict[str, Any]]) -> int:
    """How many of `bodies` get byte-identical answers (status and body, took_ms aside) from the app and
    from the reference, one after the other (the signed URLs of one time window)."""
    same = 0
    with httpx.Client(timeout=60) as http:
        for body in bodies:
            a = http.post(f"{app}/search", json=body)
            b = http.post(f"{reference}/search", json=body)
            if a.status_code == b.status_code and _TOOK.sub(b"", a.content) == _TOOK.sub(b"", b.content):
                same += 1
    return same


def parity_line(app: str, reference: str, bodies: list[dict[str, Any]]) -> str:
    same = same_answers(app, reference, bodies)
    line = f"the reference's answers equal the app's on {same} of {len(bodies)} queries (took_ms aside)"
    if same != len(bodies):
        # A reference that answers differently is not the same work: say so loudly, keep the figures.
        line += ": NOT THE SAME WORK"
    return line
