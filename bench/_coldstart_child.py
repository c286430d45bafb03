"""One cold container for bench/coldstart.py, run as `python3.12 -I -B _coldstart_child.py SPEC`.

Standard library only until sys.path holds the built function and its layers. Then the work a first
request does lazily is done phase by phase, each timed: imports (the function module), settings, the
database (pool + first round trip), the model (manifest + the tower's session), the model's first run,
and the first request itself (what remains: SQL, storage, the request's own inference). Further events
run warm.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    """Peak RSS of this process image. Not getrusage's ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a 2 GB benchmark process would report 2 GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(spec_path: str) -> None:
    started = time.time()
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text("utf-8"))
    sys.path[:0] = [spec["code_dir"], *reversed(spec["layer_dirs"])]
    phases: dict[str, float] = {}

    def phase(name: str, began: float) -> float:
        now = time.perf_counter()
        phases[name] = (now - began) * 1000
        return now

    t = time.perf_counter()
    app = importlib.import_module("app")
    t = phase("imports", t)

    from imagesearch.local.context import LocalLambdaContext
    from imagesearch.runtime import get_runtime

    runtime = get_runtime()
    t = phase("settings", t)
    (runtime.search_database if spec["function"] == "SearchFunction" else runtime.database).ping()
    t = phase("database", t)
    model = runtime.configured_model
    if spec["tower"]:
        model.warm_up(spec["tower"])  # type: ignore[attr-defined]
    t = phase("model", t)
    # The model's first run (onnxruntime allocates and tunes on it), on other input than the request's.
    if spec["tower"] == "text":
        model.embed_texts(["the first run of the text tower"])
    elif spec["tower"] == "image":
        from PIL import Image

        model.embed_images([Image.new("RGB", (640, 480), (90, 120, 200))])
    t = phase("first_run", t)

    outcomes = []
    for index, event in enumerate(spec["events"]):
        began = time.perf_counter()
        result = app.handler(event, LocalLambdaContext(function_name=spec["function"]))
        outcomes.append(
            {
                "ms": (time.perf_counter() - began) * 1000,
                "rss_mb": rss_mb(),
                "result": result,
                "at": time.time(),
            }
        )
        if index == 0:
            phase("first_request", began)
    report = {"started": started, "phases": phases, "outcomes": outcomes, "rss_mb": rss_mb()}
    Path(spec["report_path"]).write_text(json.dumps(report, default=str), "utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
