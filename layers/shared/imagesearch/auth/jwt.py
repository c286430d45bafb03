"""JWT bearer tokens from any OpenID Connect provider (Cognito, Auth0, Keycloak, ...).

The signature is checked against the provider's JWKS, then issuer, audience, expiry and not-before (with a
small leeway). The key set is cached for `jwks_lifespan` seconds and then fetched again, so a key the
provider removes stops being accepted within that time (PyJWT's per-key cache, which never expires, is
not used). The tenant is the value of one configured claim, a tenant name within the issuer's namespace
(never an API key's tenant or another issuer's); a tenant the provider vouches for is created on first
sight.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import jwt

from imagesearch.auth.tenant import Tenant, get_or_create_tenant
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.errors import ServiceUnavailable, Unauthorized


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        algorithms: list[str],
        tenant_claim: str,
        leeway_seconds: float = 30.0,
        jwks_lifespan: float = 300.0,
    ) -> None:
        if not algorithms or any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
            # Symmetric algorithms would let anyone holding the public JWKS forge tokens.
            raise ValueError("JWT algorithms must be asymmetric (RS*, ES*, PS*, EdDSA)")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.tenant_claim = tenant_claim
        self.leeway = leeway_seconds
        # The key set cache holds parsed keys and expires; an unknown `kid` (a new key) refetches the set at
        # most once per cooldown.
        self._jwks = jwt.PyJWKClient(
            jwks_url,
            cache_keys=False,
            lifespan=jwks_lifespan,
            cooldown_duration=min(30.0, jwks_lifespan),
            timeout=5,
        )
        self._tenants: dict[str, Tenant] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier:
        """The verifier of IMAGESEARCH_JWT_* (in jwt mode the settings' validation makes sure of them)."""
        assert settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks_url
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks_url=settings.jwt_jwks_url,
            algorithms=[a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()],
            tenant_claim=settings.jwt_tenant_claim,
            leeway_seconds=settings.jwt_leeway_seconds,
            jwks_lifespan=settings.jwt_jwks_lifespan_seconds,
        )

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims; Unauthorized for any token that is not valid for this API."""
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as e:
            raise ServiceUnavailable("the identity provider's keys cannot be fetched") from e
        except (jwt.PyJWKClientError, jwt.DecodeError) as e:
            raise Unauthorized("invalid token") from e
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized("the token has expired") from e
        except jwt.InvalidTokenError as e:
            raise Unauthorized("invalid token") from e
        return claims

    def tenant(self, token: str, db: Database) -> Tenant:
        """The tenant a token names, after checking the token."""
        return self.tenant_named(self.tenant_name(self.claims(token)), db)

    def tenant_name(self, claims: Mapping[str, Any]) -> str:
        """The tenant verified claims name; Unauthorized when the tenant claim is missing or blank."""
        name = claims.get(self.tenant_claim)
        if not isinstance(name, str) or not name.strip():
            raise Unauthorized(f"the token has no {self.tenant_claim!r} claim naming a tenant")
        return name

    def cached_tenant(self, name: str) -> Tenant | None:
        """The tenant `name` of this issuer when this process has seen it (no database)."""
        return self._tenants.get(name)

    def tenant_named(self, name: str, db: Database) -> Tenant:
        """The tenant `name` in this issuer's namespace, created on first sight, then cached per process
        (whether its token was verified here or by API Gateway, auth/edge.py)."""
        tenant = self._tenants.get(name)
        if tenant is None:
            with db.connection() as conn:
                tenant = get_or_create_tenant(conn, name, issuer=self.issuer)
            with self._lock:
                self._tenants[name] = tenant
        return tenant
