"""Authentication at the edge: the HTTP API's authorizers decide before a function runs.

In api_key mode a Lambda authorizer (functions/authorizer/app.py, `authorize` here) verifies the key with
the process's `ApiKeys` (its cache, the revocation epoch, the last-use touch) and returns the tenant in
its context; API Gateway keeps that verdict per Authorization header for the authorizer's result TTL, so
an invalid key never reaches a function or the database. In jwt mode API Gateway's own JWT authorizer
checks signature, issuer, audience and expiry and hands the claims on.

Either verdict reaches the function in its event, under requestContext.authorizer, which only API Gateway
writes (no header a client sends can put anything there). The functions take the tenant from it without
a key lookup (`verified_tenant`) or, for a JWT, still check the issuer and the tenant claim and name the
tenant in the issuer's namespace (`claims_tenant`). Without an authorizer's verdict (the local stack,
tests, `imagesearch invoke`) they authenticate the request themselves, as before. docs/edge-auth.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from imagesearch.auth.api_keys import ApiKeys, parse_prefix
from imagesearch.auth.credentials import presented
from imagesearch.auth.tenant import Tenant
from imagesearch.db import Database
from imagesearch.errors import ServiceUnavailable, Unauthorized
from imagesearch.logs import logger

if TYPE_CHECKING:
    from imagesearch.auth.jwt import JwtVerifier

# The authorizer's context (requestContext.authorizer.lambda in the function's event).
CONTEXT_TENANT_ID = "tenant_id"
CONTEXT_TENANT_NAME = "tenant_name"
CONTEXT_TENANT_ISSUER = "tenant_issuer"
CONTEXT_KEY_PREFIX = "key_prefix"
# Set instead of a tenant when the key could not be checked (the database is down): the request goes on
# and the function checks the key itself, so the client gets the function's 503 with Retry-After rather
# than API Gateway's bare 500 for a failed authorizer.
DEFERRED = "deferred"


# --- the Lambda authorizer ----------------------------------------------------------------------------------
def authorize(event: Mapping[str, Any], keys: ApiKeys) -> dict[str, Any]:
    """The simple response (payload format 2.0) of the API-key authorizer for one request."""
    headers = _headers(event)
    try:
        found = presented(authorization=headers.get("authorization"), api_key=headers.get("x-api-key"))
    except Unauthorized:
        return _deny("the Authorization header is not 'Bearer <key>'")
    if found is None or not found.credential:
        return _deny("no API key")
    identity = _identity_source(event)
    if identity and found.header_value.strip() not in identity:
        # API Gateway caches the verdict under the identity source's values: it may depend on them alone
        # (a key from another header would be trusted for whoever sends the same identity source next).
        return _deny("the key is not in the authorizer's identity source")
    key = found.credential
    if not (key.isascii() and key.isprintable()):
        return _deny("the key is not printable ASCII")  # never hashed, never looked up
    prefix = parse_prefix(key)
    try:
        tenant = keys.verify(key)
    except Unauthorized:
        return _deny("invalid or revoked API key", prefix)
    except ServiceUnavailable as e:
        logger.warning(
            "authorizer: the key cannot be checked now; the function will check it",
            extra={"verdict": DEFERRED, "key_prefix": prefix, "error": type(e).__name__},
        )
        return {"isAuthorized": True, "context": {DEFERRED: type(e).__name__}}
    logger.info(
        "authorizer: key accepted",
        extra={"verdict": "allow", "key_prefix": prefix, "tenant_id": str(tenant.id)},
    )
    return {"isAuthorized": True, "context": tenant_context(tenant, key_prefix=prefix)}


def _deny(reason: str, prefix: str | None = None) -> dict[str, Any]:
    logger.info("authorizer: refused", extra={"verdict": "deny", "reason": reason, "key_prefix": prefix})
    return {"isAuthorized": False}


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers by lower-case name (payload 2.0 joins repeated headers with commas)."""
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return {}
    return {str(name).lower(): value for name, value in headers.items() if isinstance(value, str)}


def _identity_source(event: Mapping[str, Any]) -> set[str]:
    """The identity source's values (API Gateway's cache key for the verdict); empty without caching."""
    values = event.get("identitySource")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return set()
    return {value.strip() for value in values if isinstance(value, str)}


def tenant_context(tenant: Tenant, *, key_prefix: str | None = None) -> dict[str, str]:
    """The authorizer's context for a verified tenant (string values only)."""
    context = {CONTEXT_TENANT_ID: str(tenant.id), CONTEXT_TENANT_NAME: tenant.name}
    if tenant.issuer is not None:
        context[CONTEXT_TENANT_ISSUER] = tenant.issuer
    if key_prefix is not None:
        context[CONTEXT_KEY_PREFIX] = key_prefix
    return context


# --- the functions' side: the verdict in the event ----------------------------------------------------------
def _authorizer(event: Any) -> Mapping[str, Any]:
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    return authorizer if isinstance(authorizer, Mapping) else {}


def verified_tenant(event: Any) -> Tenant | None:
    """The tenant the API-key authorizer verified for this request; None when it left the check to the
    function (no authorizer, or the database was down when it ran)."""
    context = _authorizer(event).get("lambda")
    if not isinstance(context, Mapping) or CONTEXT_TENANT_ID not in context:
        return None
    try:
        return Tenant(
            id=UUID(str(context[CONTEXT_TENANT_ID])),
            name=str(context[CONTEXT_TENANT_NAME]),
            issuer=str(context[CONTEXT_TENANT_ISSUER]) if context.get(CONTEXT_TENANT_ISSUER) else None,
        )
    except (KeyError, ValueError):
        # Our own authorizer wrote this: a bug, not an attack. The function checks the request itself.
        logger.error("the authorizer's context names no valid tenant", extra={"fields": sorted(context)})
        return None


def verified_claims(event: Any) -> Mapping[str, Any] | None:
    """The claims API Gateway's JWT authorizer verified for this request, None without that authorizer."""
    jwt = _authorizer(event).get("jwt")
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    return claims if isinstance(claims, Mapping) else None


def claimed_tenant_name(claims: Mapping[str, Any], verifier: JwtVerifier) -> str:
    """The tenant a verified token names; Unauthorized for another issuer's token or one naming none.

    API Gateway checked the issuer against its own configuration; it must also be this API's, since
    tenants are named within their issuer's namespace."""
    if claims.get("iss") != verifier.issuer:
        raise Unauthorized("the token was not issued by this API's identity provider")
    return verifier.tenant_name(claims)


def cached_claims_tenant(claims: Mapping[str, Any], verifier: JwtVerifier) -> Tenant | None:
    """The tenant of verified claims when this process has seen it before (no database); None otherwise."""
    return verifier.cached_tenant(claimed_tenant_name(claims, verifier))


def claims_tenant(claims: Mapping[str, Any], verifier: JwtVerifier, db: Database) -> Tenant:
    """The tenant of verified claims, in the issuer's namespace, created on first sight (the verifier's
    cache is shared: a tenant is looked up once per process, at the edge or not)."""
    return verifier.tenant_named(claimed_tenant_name(claims, verifier), db)
