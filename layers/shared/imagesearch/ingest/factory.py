"""Build the process-wide Ingestor from settings (the embed function and the local stack)."""

from __future__ import annotations

from imagesearch.config import get_settings
from imagesearch.db import get_database
from imagesearch.ingest.models import IngestModels
from imagesearch.ingest.processor import Ingestor
from imagesearch.model.embedder import get_embedder
from imagesearch.storage import get_storage


def ingestor_from_settings() -> Ingestor:
    settings = get_settings()
    db = get_database()
    bundle = settings.model_uri or (str(settings.model_dir) if settings.model_dir else None)
    return Ingestor(
        db,
        get_storage(),
        IngestModels(db, get_embedder(), bundle_uri=bundle),
        max_upload_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
    )
