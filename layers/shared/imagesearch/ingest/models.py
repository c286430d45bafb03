"""Which models new images are embedded with: the configured one, plus every model being back-filled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from imagesearch.db import Database
from imagesearch.db import models as model_rows
from imagesearch.logs import logger
from imagesearch.model.embedder import Embedder, EmbeddingModel

ModelLoader = Callable[[model_rows.ModelRecord], EmbeddingModel | None]


def load_local_bundle(record: model_rows.ModelRecord) -> EmbeddingModel | None:
    """An Embedder for a model whose bundle lies in a local directory (None if it does not)."""
    if record.bundle_uri and Path(record.bundle_uri).is_dir():
        return Embedder(record.bundle_uri)
    return None


class IngestModels:
    """Callable returning the models to embed with; registers the configured model on first use."""

    def __init__(
        self,
        db: Database,
        configured: EmbeddingModel,
        *,
        bundle_uri: str | None = None,
        loader: ModelLoader = load_local_bundle,
        refresh_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.configured = configured
        self.bundle_uri = bundle_uri
        self._loader = loader
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._registered = False
        self._extra: dict[str, EmbeddingModel] = {}
        self._refreshed_at = float("-inf")

    def __call__(self) -> list[EmbeddingModel]:
        with self._lock:
            if not self._registered:
                self._register()
            if time.monotonic() - self._refreshed_at >= self._refresh_seconds:
                self._refresh()
            return [self.configured, *self._extra.values()]

    def _register(self) -> None:
        manifest = getattr(self.configured, "manifest", None)
        with self.db.connection() as conn:
            model_rows.register_model(
                conn,
                model_id=self.configured.model_id,
                dim=self.configured.dim,
                manifest=manifest.model_dump(mode="json") if manifest is not None else None,
                bundle_uri=self.bundle_uri,
            )
        self._registered = True

    def _refresh(self) -> None:
        with self.db.connection() as conn:
            records = [
                *model_rows.models_in_state(conn, "backfill"),
                *model_rows.models_in_state(conn, "active"),
            ]
        wanted = {r.id: r for r in records if r.id != self.configured.model_id}
        for model_id in list(self._extra):
            if model_id not in wanted:
                del self._extra[model_id]
        for model_id, record in wanted.items():
            if model_id not in self._extra:
                model = self._loader(record)
                if model is None:
                    logger.warning(
                        "model bundle not loadable here; new images miss its vectors until reindex",
                        extra={"model_id": model_id, "bundle_uri": record.bundle_uri},
                    )
                    continue
                self._extra[model_id] = model
        self._refreshed_at = time.monotonic()
