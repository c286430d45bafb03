"""Types shared by the search tests' fixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID


@dataclass
class Gallery:
    """Images put through storage + the embed path; `ids[name]` is each image's id."""

    ids: dict[str, UUID]


AddImages = Callable[..., Gallery]
