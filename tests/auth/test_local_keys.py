"""`imagesearch keys --data-dir` acts on a running local stack's database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.live import live_stack

from imagesearch.auth.api_keys import parse_prefix
from imagesearch.cli.main import main


def test_keys_for_a_running_local_stack(
    tmp_path: Path, model_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "stack"
    with live_stack(data_dir, model_dir=model_bundle, auth_mode="api_key", api_key_cache_seconds=0) as stack:
        assert httpx.get(f"{stack.base_url}/images").status_code == 401

        assert main(["keys", "create", "--tenant", "local-team", "--data-dir", str(data_dir)]) == 0
        key = capsys.readouterr().out.strip().splitlines()[-1]
        assert httpx.get(f"{stack.base_url}/images", headers={"X-API-Key": key}).status_code == 200

        assert main(["keys", "revoke", parse_prefix(key) or "", "--data-dir", str(data_dir)]) == 0
        assert httpx.get(f"{stack.base_url}/images", headers={"X-API-Key": key}).status_code == 401
    # With the stack stopped, the command starts PostgreSQL on its own and stops it again.
    assert main(["keys", "list", "--data-dir", str(data_dir)]) == 0
    assert "local-team" in capsys.readouterr().out
    assert not (data_dir / "pg" / "postmaster.pid").exists()
