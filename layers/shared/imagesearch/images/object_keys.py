"""Where objects live: originals and thumbnails under tenant-scoped keys.

Only `originals/` raises object-created events (the bucket notification filters on that prefix), so
writing a thumbnail never triggers the embed function.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

ORIGINALS = "originals/"
THUMBNAILS = "thumbnails/"


def original_key(tenant_id: UUID, image_id: UUID) -> str:
    return f"{ORIGINALS}{tenant_id}/{image_id}"


def thumbnail_key(tenant_id: UUID, image_id: UUID) -> str:
    return thumbnail_keys([(tenant_id, image_id)])[0]


def thumbnail_keys(pairs: list[tuple[UUID, UUID]]) -> list[str]:
    """`thumbnail_key` of each (tenant_id, image_id) pair: each tenant's part formatted once (a search page
    is one tenant's)."""
    prefixes: dict[UUID, str] = {}
    keys = []
    for tenant_id, image_id in pairs:
        prefix = prefixes.get(tenant_id)
        if prefix is None:
            prefix = prefixes[tenant_id] = f"{THUMBNAILS}{tenant_id}/"
        keys.append(f"{prefix}{image_id}.webp")
    return keys


@dataclass(frozen=True)
class OriginalKey:
    tenant_id: UUID
    name: str  # the rest of the key: our image id, or a file name for objects put there by other tools

    @property
    def image_id(self) -> UUID | None:
        """The image id when the name is one as `original_key` writes it (any other spelling is a name)."""
        try:
            image_id = UUID(self.name)
        except ValueError:
            return None
        return image_id if str(image_id) == self.name else None


def parse_original_key(key: str) -> OriginalKey | None:
    """The tenant (trusted from the key alone) and the rest of an `originals/` key; None if not one."""
    if not key.startswith(ORIGINALS):
        return None
    tenant_part, _, name = key[len(ORIGINALS) :].partition("/")
    try:
        tenant_id = UUID(tenant_part)
    except ValueError:
        return None
    if not name:
        return None
    return OriginalKey(tenant_id=tenant_id, name=name)
