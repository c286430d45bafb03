"""The TenantDep dependency: the caller's tenant, from an API key or a JWT (or the default tenant)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from imagesearch.auth.api_keys import KEY_PREFIX
from imagesearch.auth.tenant import DEFAULT_TENANT, Tenant
from imagesearch.config import AuthMode
from imagesearch.errors import Unauthorized
from imagesearch.runtime import Runtime, get_runtime


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
    """The tenant of the presented credentials (the default tenant when auth is off), within its rate limit.

    Async, so the common cases (auth off, a key verified moments ago, a leased token in memory) cost no
    thread-pool hop; a database lookup, a JWKS fetch or a lease runs in the pool."""
    runtime = get_runtime()
    tenant = await _authenticate(request, runtime)
    limiter = runtime.rate_limiter
    if limiter is not None and not limiter.take_local(tenant.id):
        await run_in_threadpool(limiter.take, tenant.id)
    return tenant


async def _authenticate(request: Request, runtime: Runtime) -> Tenant:
    if runtime.settings.auth_mode is AuthMode.NONE:
        return DEFAULT_TENANT
    token = credentials(request)
    if not token:
        raise Unauthorized("authentication required: send an API key or a bearer token")
    keys, verifier = runtime.api_keys, runtime.jwt
    if verifier is not None and not token.startswith(KEY_PREFIX):
        return await run_in_threadpool(verifier.tenant, token, runtime.database)
    cached = keys.cached(token)
    if cached is not None:
        return cached
    tenant: Tenant = await run_in_threadpool(keys.verify, token)
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]
