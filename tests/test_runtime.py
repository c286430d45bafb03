"""The composition root: each part built once per runtime, one way to replace a part, pools closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagesearch.config import Settings
from imagesearch.runtime import Runtime, configure, get_runtime, reset, using
from imagesearch.storage import storage_from_url


def test_parts_are_built_once_and_shared(settings: Settings) -> None:
    runtime = get_runtime()
    assert runtime.settings is settings
    assert runtime.search is runtime.search and runtime.ingestor is runtime.ingestor
    # one URL cache and one database for the services that share them
    assert runtime.search.urls is runtime.images.urls is runtime.urls
    assert runtime.images.db is runtime.ingestor.db is runtime.database
    assert runtime.search_database is runtime.database  # no replica configured
    assert runtime.search.models is runtime.models


def test_a_part_handed_in_is_the_one_every_service_uses(settings: Settings, tmp_path: Path) -> None:
    other = storage_from_url(f"file://{tmp_path / 'elsewhere'}", signing_secret="s")
    runtime = configure(settings, storage=other)
    assert get_runtime() is runtime
    assert runtime.storage is other
    assert runtime.images.storage is other and runtime.ingestor.storage is other
    assert runtime.urls.storage is other
    with pytest.raises(TypeError, match="not a replaceable part"):
        configure(settings, search="anything")


def test_replacing_the_runtime_closes_its_pools(settings: Settings) -> None:
    first = get_runtime()
    first.database.ping()
    assert first.database.opened
    configure(settings)
    assert not first.database.opened  # closed with the runtime it belonged to
    get_runtime().database.ping()
    reset()
    assert get_runtime() is not first


def test_loaded_bundles_outlive_a_runtime_only_when_opened_the_same_way(settings: Settings) -> None:
    model = get_runtime().configured_model
    assert configure(settings).configured_model is model
    other_threads = settings.model_copy(update={"ort_threads": settings.ort_threads + 1})
    reopened = configure(other_threads).configured_model
    assert reopened is not model and reopened.model_id == model.model_id


def test_using_puts_the_previous_runtime_back(settings: Settings, tmp_path: Path) -> None:
    before = get_runtime()
    elsewhere = settings.model_copy(update={"storage_url": f"file://{tmp_path / 'other'}"})
    with using(elsewhere) as inside:
        assert get_runtime() is inside and inside.settings is elsewhere
        inside.database.ping()
    assert get_runtime() is before
    assert not inside.database.opened


def test_a_runtime_without_a_database_url_says_so(settings: Settings) -> None:
    from imagesearch.errors import DatabaseUnavailable

    runtime = Runtime(settings.model_copy(update={"database_url": None}))
    with pytest.raises(DatabaseUnavailable, match="IMAGESEARCH_DATABASE_URL is not set"):
        _ = runtime.database


def test_the_search_path_warms_at_init_without_a_connection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMAGESEARCH_WARM_MODEL_AT_INIT (the search function under SnapStart): the text tower is loaded and has
    run before the first request, no pool is open (a snapshot must hold no connection), and each restore
    reseeds `random` (restored copies would otherwise draw the same numbers)."""
    import random
    import sys
    import types

    from imagesearch.model.embedder import Embedder
    from imagesearch.runtime import configure, prepare_at_init

    hooks: dict[str, Any] = {}
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = lambda fn: hooks.setdefault("before", fn)  # type: ignore[attr-defined]
    fake.register_after_restore = lambda fn: hooks.setdefault("after", fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)

    cold = configure(settings)
    prepare_at_init()  # off by default: nothing happens
    assert "configured_model" not in cold._parts and hooks == {}

    runtime = configure(settings.model_copy(update={"warm_model_at_init": True}))
    runtime._bundles.clear()  # a bundle an earlier runtime opened (and this one adopted) must not count
    prepare_at_init()
    model = runtime.configured_model
    assert isinstance(model, Embedder) and set(model._sessions) == {"text"}
    assert "search" in runtime._parts
    assert not runtime.database.opened
    hooks["before"]()
    assert not runtime.database.opened
    random.seed(7)
    copy_a = random.random()
    random.seed(7)
    hooks["after"]()
    assert random.random() != copy_a
