"""The TenantDep dependency: the caller's tenant, from an API key or a JWT (or the default tenant).

Behind the HTTP API's authorizers the verdict is already in the event (auth/edge.py): an API key's tenant
is taken from it without a lookup, a JWT's claims are checked for this API's issuer and a tenant claim.
Without an authorizer (the local stack, tests, `imagesearch invoke`), the request's credentials are
verified here. The per-tenant rate limit applies either way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from imagesearch.auth import edge
from imagesearch.auth.api_keys import KEY_PREFIX
from imagesearch.auth.credentials import presented
from imagesearch.auth.tenant import DEFAULT_TENANT, Tenant
from imagesearch.config import AuthMode
from imagesearch.errors import Unauthorized
from imagesearch.runtime import Runtime, get_runtime


def credentials(request: Request) -> str | None:
    """`Authorization: Bearer <token>` or `X-API-Key: <key>`; None when neither is present."""
    found = presented(
        authorization=request.headers.get("authorization"), api_key=request.headers.get("x-api-key")
    )
    return found.credential if found is not None else None


async def current_tenant(request: Request) -> Tenant:
    """The tenant of the presented credentials (the default tenant when auth is off), within its rate limit.

    Async, so the common cases (auth off, a verdict from the edge, a key verified moments ago, a leased token
    in memory) cost no thread-pool hop; a database lookup, a JWKS fetch or a lease runs in the pool."""
    runtime = get_runtime()
    tenant = await authenticate(request, runtime)
    limiter = runtime.rate_limiter
    if limiter is not None and not limiter.take_local(tenant.id):
        await run_in_threadpool(limiter.take, tenant.id)
    return tenant


async def authenticate(request: Request, runtime: Runtime) -> Tenant:
    """The caller's tenant (no rate limit); Unauthorized when its credentials are missing or do not hold."""
    if runtime.settings.auth_mode is AuthMode.NONE:
        return DEFAULT_TENANT
    from_edge = await _from_edge(request, runtime)
    if from_edge is not None:
        return from_edge
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


async def _from_edge(request: Request, runtime: Runtime) -> Tenant | None:
    """The tenant API Gateway's authorizer vouched for (Mangum puts the event in the scope), if any."""
    event = request.scope.get("aws.event")
    if event is None:
        return None
    tenant = edge.verified_tenant(event)
    if tenant is not None:
        return tenant
    claims, verifier = edge.verified_claims(event), runtime.jwt
    if claims is None or verifier is None:
        return None
    cached = edge.cached_claims_tenant(claims, verifier)
    if cached is not None:
        return cached
    found: Tenant = await run_in_threadpool(edge.claims_tenant, claims, verifier, runtime.database)
    return found


async def is_authenticated(request: Request) -> bool:
    """Whether the caller is known: auth is off, or its credentials hold. False when it presents none at all;
    Unauthorized when they do not hold (ServiceUnavailable when they cannot be checked now)."""
    runtime = get_runtime()
    if runtime.settings.auth_mode is AuthMode.NONE:
        return True
    event = request.scope.get("aws.event")
    at_edge = event is not None and (
        edge.verified_tenant(event) is not None or edge.verified_claims(event) is not None
    )
    if not at_edge and not credentials(request):
        return False
    await authenticate(request, runtime)
    return True


TenantDep = Annotated[Tenant, Depends(current_tenant)]
