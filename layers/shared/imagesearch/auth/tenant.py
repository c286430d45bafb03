"""The caller's tenant (every read and write is scoped to it), and SQL on the `tenants` table.

A tenant is named within its issuer: tenants of API keys (and the default tenant) have none, tenants named
by a JWT claim carry the token's issuer. So a token that names `acme` reaches its own issuer's `acme`,
never the `acme` of an API key or of another identity provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import psycopg

from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.errors import InvalidRequest


@dataclass(frozen=True)
class Tenant:
    id: UUID
    name: str
    issuer: str | None = None


DEFAULT_TENANT = Tenant(id=UUID(DEFAULT_TENANT_ID), name="default")


def get_or_create_tenant(conn: psycopg.Connection, name: str, *, issuer: str | None = None) -> Tenant:
    """The tenant `name` of `issuer` (None: the API keys' namespace), created on first sight."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRequest("a tenant name is 1 to 200 characters")
    row = conn.execute(
        "INSERT INTO tenants (name, issuer) VALUES (%s, %s) "
        "ON CONFLICT (issuer, name) DO UPDATE SET name = EXCLUDED.name RETURNING id, name, issuer",
        (name, issuer),
    ).fetchone()
    assert row is not None
    return Tenant(id=row[0], name=row[1], issuer=row[2])


def tenant_exists(conn: psycopg.Connection, tenant_id: UUID) -> bool:
    return conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant_id,)).fetchone() is not None
