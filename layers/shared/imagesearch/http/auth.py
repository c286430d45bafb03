"""The TenantDep dependency: the caller's tenant, from an API key or a JWT (or the default tenant)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from imagesearch.auth.keys import KEY_PREFIX, ApiKeys
from imagesearch.auth.tenant import DEFAULT_TENANT, Tenant
from imagesearch.config import AuthMode, Settings, get_settings
from imagesearch.db import get_database, get_search_database
from imagesearch.errors import Unauthorized
from imagesearch.http.deps import per_process

if TYPE_CHECKING:  # PyJWT and cryptography load only in jwt mode (~40 ms of a cold start otherwise)
    from imagesearch.auth.jwt import JwtVerifier


def _authenticators_for(settings: Settings) -> tuple[ApiKeys, JwtVerifier | None]:
    """One set per process (they cache keys and JWKS); rebuilt if the settings are replaced."""

    def build() -> tuple[ApiKeys, JwtVerifier | None]:
        keys = ApiKeys(
            get_search_database(),  # a read: the replica will do on the search path
            writer=get_database(),
            touch_seconds=settings.api_key_touch_seconds,
            cache_seconds=settings.api_key_cache_seconds,
        )
        if settings.auth_mode is not AuthMode.JWT:
            return keys, None
        from imagesearch.auth.jwt import JwtVerifier

        assert settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks_url
        verifier = JwtVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwt_jwks_url,
            algorithms=[a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()],
            tenant_claim=settings.jwt_tenant_claim,
            leeway_seconds=settings.jwt_leeway_seconds,
        )
        return keys, verifier

    return per_process("authenticators", (settings,), build)


def credentials(request: Request) -> str | None:
    """`Authorization: Bearer <token>` or `X-API-Key: <key>`; None when neither is present."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use 'Authorization: Bearer <key or token>'")
        return token.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None else None


async def current_tenant(request: Request) -> Tenant:
    """The default tenant when auth is off; otherwise the tenant of the presented credentials.

    Async, so the common cases (auth off, a key verified moments ago) cost no thread-pool hop; a database
    lookup or a JWKS fetch runs in the pool."""
    settings = get_settings()
    if settings.auth_mode is AuthMode.NONE:
        return DEFAULT_TENANT
    token = credentials(request)
    if not token:
        raise Unauthorized("authentication required: send an API key or a bearer token")
    keys, verifier = _authenticators_for(settings)
    if verifier is not None and not token.startswith(KEY_PREFIX):
        return await run_in_threadpool(verifier.tenant, token, get_database())
    cached = keys.cached(token)
    if cached is not None:
        return cached
    tenant: Tenant = await run_in_threadpool(keys.verify, token)
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]
