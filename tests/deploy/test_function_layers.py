"""Each function runs with only the dependency layers template.yaml gives it (layers/deps/split.py).

A child process blocks the imports of every layer the function does not get, then drives the function's
own routes or events: upload never runs a model, embed serves no HTTP, search has no HEIC decoder unless
asked (a HEIC picture to search with is refused with a clear 415, never a 500), only embed has the place
gazetteer. tests/deploy/test_sam_build.py checks the same on the built layers with Lambda's python3.12.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.images import make_image

from imagesearch.config import REPO_ROOT
from imagesearch.db import Database

sys.path.insert(0, str(REPO_ROOT / "layers" / "deps"))
import split  # noqa: E402 - the build's own layer map

# Import names of each layer's distributions (split.LAYERS names distributions).
IMPORTS = {
    "model": {"onnxruntime", "tokenizers", "ftfy", "regex"},
    "http": {
        "fastapi",
        "starlette",
        "mangum",
        "multipart",
        "python_multipart",
        "jwt",
        "cryptography",
        "anyio",
    },
    "heif": {"pillow_heif"},
    "places": {"reverse_geocode"},
}
# The layers each function gets besides the core and the shared package (template.yaml, by default).
FUNCTION_LAYERS = {
    "upload": {"http", "heif"},
    "embed": {"model", "heif", "places"},
    "search": {"model", "http"},
    "webhooks": set(),
}

CHILD = r"""
import importlib.abc, json, sys
blocked = set(sys.argv[2].split(",")) - {""}

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this function's layers)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
sys.path.insert(0, sys.argv[3])  # tests/, for support.images
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import get_runtime
from imagesearch.auth.tenant import DEFAULT_TENANT
from pathlib import Path
function, out = sys.argv[1], {}
app = load_function(function)
png, heic = Path(sys.argv[4], "a.png").read_bytes(), Path(sys.argv[4], "b.heic").read_bytes()
upload = get_runtime().images.upload
if function == "upload":
    from fastapi.testclient import TestClient
    client = TestClient(app.app)
    out["health"] = client.get("/health").status_code
    created = client.post("/images", files={"file": ("a.png", png, "image/png")})
    out["upload"] = created.status_code
    out["upload_heic"] = client.post("/images", files={"file": ("b.heic", heic, "image/heic")}).status_code
    image_id = created.json()["id"]
    out["get"] = client.get(f"/images/{image_id}").status_code
    out["patch"] = client.patch(f"/images/{image_id}", json={"title": "blue"}).status_code
    out["list"] = client.get("/images").status_code
    out["delete"] = client.delete(f"/images/{image_id}").status_code
elif function == "embed":
    runtime = get_runtime()
    ids = []
    for name, data in (("png", png), ("heic", heic)):
        record, _ = upload(DEFAULT_TENANT, data, filename=name, title=None, description=None, tags=None)
        ids.append(record.id)
        key = f"originals/{DEFAULT_TENANT.id}/{record.id}"
        info = runtime.storage.head(key)
        sys.path.insert(0, sys.argv[3])
        from support.events import s3_event
        app.handler(s3_event(key, bucket="local", size=info.size, etag=info.etag), LocalLambdaContext())
    out["statuses"] = [runtime.images.get(DEFAULT_TENANT, i).status for i in ids]
    from imagesearch.enrichment.places import data_directory
    out["gazetteer"] = (data_directory() / "geocode.gz").is_file()  # its own layer, embed's alone
elif function == "webhooks":
    # the schedule's event and an image event from the bus: either one only says "look now"
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    image = {"source": "imagesearch", "detail-type": "imagesearch.image.ready", "detail": {}}
    out["answers"] = [app.handler(e, LocalLambdaContext(function_name="webhooks")) for e in (schedule, image)]
else:
    from fastapi.testclient import TestClient
    runtime = get_runtime()
    record, _ = upload(DEFAULT_TENANT, png, filename="a", title="blue", description=None, tags=None)
    from imagesearch.ingest.events import ObjectEvent
    key = f"originals/{DEFAULT_TENANT.id}/{record.id}"
    info = runtime.storage.head(key)
    runtime.ingestor.ingest([ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put")])
    client = TestClient(app.app)
    found = client.post("/search", json={"query": "a blue circle"})
    out["search"] = [found.status_code, [r["id"] for r in found.json()["results"]] == [str(record.id)]]
    out["by_png"] = client.post("/search/image", files={"file": ("a.png", png, "image/png")}).status_code
    answer = client.post("/search/image", files={"file": ("a.heic", heic, "image/heic")})
    out["by_heic"] = [answer.status_code, answer.headers["content-type"], answer.json()["detail"]]
print("RESULT " + json.dumps(out))
"""


def run(function: str, blocked: set[str], tmp_path: Path, database_url: str, model_bundle: Path) -> dict:
    (tmp_path / "a.png").write_bytes(make_image(color="blue"))
    (tmp_path / "b.heic").write_bytes(make_image(color="red", fmt="HEIF"))
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAGESEARCH_DATABASE_URL": database_url,
        "IMAGESEARCH_STORAGE_URL": f"file://{tmp_path / 'objects'}",
        "IMAGESEARCH_SIGNING_SECRET": "layers",
        "MODEL_DIR": str(model_bundle),
        "IMAGESEARCH_LOG_LEVEL": "WARNING",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            function,
            ",".join(sorted(blocked)),
            str(REPO_ROOT / "tests"),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    found: dict = json.loads(lines[-1][len("RESULT ") :])
    return found


def blocked_for(function: str) -> set[str]:
    return set().union(*(names for layer, names in IMPORTS.items() if layer not in FUNCTION_LAYERS[function]))


def test_the_import_names_cover_the_builds_layer_map() -> None:
    assert set(IMPORTS) == set(split.LAYERS)
    assert {"onnxruntime", "tokenizers", "ftfy", "regex"} == split.LAYERS["model"]
    assert {"fastapi", "mangum", "python-multipart", "pyjwt"} == split.LAYERS["http"]
    assert {"pillow-heif"} == split.LAYERS["heif"]
    assert {"reverse-geocode"} == split.LAYERS["places"]  # embed's alone: search is at the size limit


@pytest.mark.parametrize("function", ["upload", "embed", "search", "webhooks"])
def test_each_function_works_with_only_its_layers(
    function: str, tmp_path: Path, database_url: str, db: Database, model_bundle: Path
) -> None:
    found = run(function, blocked_for(function), tmp_path, database_url, model_bundle)
    if function == "upload":
        assert found == {
            "health": 200,
            "upload": 201,
            "upload_heic": 201,
            "get": 200,
            "patch": 200,
            "list": 200,
            "delete": 204,
        }
    elif function == "embed":
        assert found == {"statuses": ["ready", "ready"], "gazetteer": True}
    elif function == "webhooks":
        assert found == {"answers": [{"attempted": 0}, {"attempted": 0}]}
    else:
        assert found["search"] == [200, True]
        assert found["by_png"] == 200
        status, content_type, detail = found["by_heic"]
        assert (status, content_type) == (415, "application/problem+json")
        assert "HEIC" in detail
