"""The caller's tenant: every read and write is scoped to it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from imagesearch.config import DEFAULT_TENANT_ID


@dataclass(frozen=True)
class Tenant:
    id: UUID
    name: str


DEFAULT_TENANT = Tenant(id=UUID(DEFAULT_TENANT_ID), name="default")
