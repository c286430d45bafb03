"""Settings: the one place that reads the environment."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from imagesearch.errors import InvalidRequest

ENV_PREFIX = "IMAGESEARCH_"
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"

# The source checkout: layers/shared/imagesearch/config.py -> four levels up. Functions and migrations
# live there; they are not part of the installed package.
REPO_ROOT = Path(__file__).resolve().parents[3]

# The committed demo bundle: the model of the embedded default (see README, "Models").
PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_MODEL_DIR = PACKAGE_DIR / "model" / "demo_bundle"

# Decoded pictures over this many pixels are refused (decompression bombs included).
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000


def _check_database_url(value: str) -> str:
    """A libpq URL (postgresql://...). Unix-socket URLs (?host=/dir) are fine; PostgresDsn refuses them."""
    from psycopg.conninfo import conninfo_to_dict

    if urlparse(value).scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL")
    try:
        conninfo_to_dict(value)
    except Exception as e:  # psycopg.ProgrammingError: the message says what is wrong
        raise ValueError(f"not a valid PostgreSQL URL: {e}") from e
    return value


DatabaseUrl = Annotated[str, AfterValidator(_check_database_url)]


class AuthMode(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    JWT = "jwt"


class SearchStrategy(BaseModel):
    """Model, index and fusion settings of one way of answering a query: the knobs a change to the search
    path turns, and what shadow mode compares (the live strategy comes from the IMAGESEARCH_SEARCH_*
    settings, a candidate from IMAGESEARCH_SHADOW_STRATEGY)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "live"
    model_id: str | None = Field(default=None, description="None: the active model")
    candidates: Annotated[int, Field(ge=1, le=1000)] = 200
    ef_search: Annotated[int, Field(ge=1, le=1000)] = 200
    weight_vector: Annotated[float, Field(ge=0)] = 1.0
    weight_keyword: Annotated[float, Field(ge=0)] = 1.0
    rrf_k: Annotated[int, Field(ge=1, le=1000)] = 60
    # cutoff: auto cuts a branch, past `cutoff_min_results`, at the largest drop from a score at or above the
    # mean ("largest") or at the first drop ("first") between neighbouring candidates, when it is at least
    # `cutoff_gap` times their mean drop (bench/relevance.py tunes them; docs/search.md "Cut-offs").
    cutoff_rule: Literal["first", "largest"] = "largest"
    cutoff_gap: Annotated[float, Field(ge=0)] = 2.0
    cutoff_min_results: Annotated[int, Field(ge=1, le=1000)] = 2
    # collapse: duplicates groups results whose vectors are at least this similar (cosine).
    duplicate_similarity: Annotated[float, Field(ge=0, le=1)] = 0.95
    endpoint: str | None = Field(default=None, description="another deployment's POST /search URL")
    api_key: str | None = Field(default=None, description="credentials for `endpoint`", repr=False)

    @property
    def effective_ef_search(self) -> int:
        # ef_search caps what the index returns: never below the candidates we ask for.
        return max(self.ef_search, self.candidates)


def parse_strategy(text: str) -> SearchStrategy:
    """A strategy from JSON, e.g. '{"name": "ef200", "ef_search": 200}'."""
    try:
        return SearchStrategy.model_validate(json.loads(text))
    except (ValueError, ValidationError) as e:
        raise InvalidRequest(f"not a search strategy: {e}") from e


def _alias(name: str) -> AliasChoices:
    """Accept IMAGESEARCH_<NAME> and the bare name (DATABASE_URL, MODEL_DIR, MODEL_URI, PORT)."""
    return AliasChoices(f"{ENV_PREFIX}{name}", name)


class Settings(BaseSettings):
    """Typed configuration; every field is IMAGESEARCH_<FIELD> in the environment."""

    # Empty variables count as unset: `sam local` turns an AWS::NoValue parameter into "".
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # --- database ---
    database_url: Annotated[DatabaseUrl | None, Field(validation_alias=_alias("DATABASE_URL"))] = None
    database_replica_url: DatabaseUrl | None = None
    # A Secrets Manager secret (ARN) holding the URL, as a plain string or JSON with a "url" key, or the
    # username/password/host/port/dbname keys RDS writes; read once per container.
    database_secret_arn: str | None = None
    # The same for the read replica of the search path (IMAGESEARCH_DATABASE_REPLICA_URL's secret twin).
    database_replica_secret_arn: str | None = None
    # Authenticate with an RDS IAM token (made from the function's role, per new connection) instead of a
    # password: the URL then names user, host (the RDS Proxy endpoint), port and database, and no password.
    database_iam_auth: bool = False
    db_pool_min: Annotated[int, Field(ge=0, le=100)] = 0
    db_pool_max: Annotated[int, Field(ge=1, le=200)] = 2
    # POST /search awaits its statement in the event loop on async connections of its own, up to
    # db_pool_max more (db/aio.py); off, it reads on the pool above from a worker thread. Lambda turns it
    # off: one request at a time needs no second connection (docs/deploy.md, "Connections").
    db_async_reads: bool = True
    # A pooled connection idle longer than this is pinged before use: after a Lambda thaw it may be dead.
    db_idle_check_seconds: Annotated[float, Field(ge=0)] = 30.0
    db_connect_timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 15_000

    # --- object storage ---
    storage_url: str | None = None
    storage_endpoint_url: str | None = None
    storage_region: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    signing_secret: str | None = None
    # At most an hour: a leaked URL should not outlive the session that asked for it by much.
    presign_expiry_seconds: Annotated[int, Field(ge=10, le=3600)] = 900

    # --- events pushed over HTTP (POST /events of the embed service; docs/deploy-anywhere.md) ---
    # When set, a delivery must carry `Authorization: Bearer <token>` (a MinIO webhook's auth_token).
    events_token: str | None = None

    # --- model ---
    model_dir: Annotated[Path | None, Field(validation_alias=_alias("MODEL_DIR"))] = None
    model_uri: Annotated[str | None, Field(validation_alias=_alias("MODEL_URI"))] = None
    model_cache_dir: Path = Path("/tmp/imagesearch-models")
    ort_threads: Annotated[int, Field(ge=0, le=64)] = 0
    # Let onnxruntime's intra-op threads spin between queries (its default): off here, since at one query
    # at a time spinning nearly doubles the CPU per query (bench/ort_spinning.py).
    ort_spinning: bool = False
    # Load the query tower and run it once while the function initialises (SnapStart snapshots the result).
    warm_model_at_init: bool = False
    # Zero-shot labels (`auto_tags`, docs/model.md "Labels"): on or off, the vocabulary file (None: the
    # package's one for the model), and how far (in standard deviations) a label's score must stand out
    # (None: the vocabulary file's own threshold).
    labels_enabled: bool = True
    labels_file: Path | None = None
    labels_threshold: Annotated[float | None, Field(gt=0, le=10)] = None

    # --- auth ---
    auth_mode: AuthMode = AuthMode.NONE
    # API keys: last use is written at most this often per key (no write on every request).
    api_key_touch_seconds: Annotated[float, Field(ge=0)] = 300.0
    # A verified key is trusted this long without a database lookup of the key...
    api_key_cache_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    # ...unless the revocation epoch moved: each process reads it at most this often (one single-row read),
    # so a revoked key is refused everywhere within this time. 0: only api_key_cache_seconds bounds it.
    api_key_revocation_check_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0
    # Per-tenant rate limit, shared by every process (auth/rate_limit.py): requests per second, 0 = off.
    rate_limit_per_second: Annotated[float, Field(ge=0, le=100_000)] = 0.0
    # The bucket's size (a burst allowed after a quiet spell); default twice the rate, at least 1.
    rate_limit_burst: Annotated[int | None, Field(ge=1)] = None
    # Tokens a process takes from the shared bucket at once (one database write each); default rate / 10.
    rate_limit_lease: Annotated[int | None, Field(ge=1)] = None
    # JWT (auth_mode=jwt), from any OpenID Connect provider (Cognito, Auth0, Keycloak...).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_tenant_claim: str = "tenant"
    jwt_algorithms: str = "RS256"
    jwt_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    # How long the provider's key set is trusted before it is fetched again: a key the provider removed
    # (a rotation after a leak) is refused at most this long afterwards.
    jwt_jwks_lifespan_seconds: Annotated[float, Field(gt=0, le=86400)] = 300.0

    # --- uploads ---
    max_upload_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    max_image_pixels: Annotated[int, Field(gt=0)] = DEFAULT_MAX_IMAGE_PIXELS
    # Whether ingestion keeps a photo's EXIF GPS position (latitude/longitude); false: never stored.
    store_location: bool = True
    # Read printed text in pictures into the keyword index (docs/search.md; the OCR function in the cloud,
    # after the embedding locally). Needs rapidocr-onnxruntime (the `ocr` extra); without it, off.
    ocr: bool = True

    # --- search (defaults chosen from bench/relevance.py; see docs/search.md) ---
    search_candidates: Annotated[int, Field(ge=1, le=1000)] = 200
    search_ef_search: Annotated[int, Field(ge=1, le=1000)] = 200
    search_weight_vector: Annotated[float, Field(ge=0)] = 1.0
    search_weight_keyword: Annotated[float, Field(ge=0)] = 1.0
    search_rrf_k: Annotated[int, Field(ge=1, le=1000)] = 60
    search_cutoff_rule: Literal["first", "largest"] = "largest"
    search_cutoff_gap: Annotated[float, Field(ge=0)] = 2.0
    search_cutoff_min_results: Annotated[int, Field(ge=1, le=1000)] = 2
    search_duplicate_similarity: Annotated[float, Field(ge=0, le=1)] = 0.95
    query_cache_size: Annotated[int, Field(ge=0)] = 1024

    # --- shadow mode: a candidate strategy run beside the live one on sampled requests ---
    shadow_strategy: str | None = None  # JSON, e.g. {"name": "ef200", "ef_search": 200}
    shadow_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    shadow_timeout_ms: Annotated[int, Field(ge=1, le=10_000)] = 150

    # --- outbound events (docs/webhooks.md) ---
    # Let webhooks go to loopback, private, link-local and reserved addresses (off: server-side request
    # forgery; on only where every such address is harmless, such as the tests' receiver on 127.0.0.1).
    webhook_allow_private_urls: bool = False
    # Attempts of one delivery before it is `failed` (the retry schedule: imagesearch.webhooks.dispatch).
    webhook_max_attempts: Annotated[int, Field(ge=1, le=20)] = 9
    # Per connect and per read of one webhook POST.
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    # The EventBridge bus the image events are put on; unset: none are.
    eventbridge_bus_name: str | None = None

    # --- logging ---
    log_level: str = "INFO"

    # --- serving outside Lambda (`imagesearch serve`, the container image) ---
    # Where functions/ and migrations/ are when the package is not run from its source checkout (the
    # container's /app); unset: the checkout's.
    app_dir: Path | None = None
    # The port to listen on; Knative and Cloud Run hand it over as PORT.
    port: Annotated[int, Field(ge=1, le=65535, validation_alias=_alias("PORT"))] = 8080

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme == "file":
            if not (parsed.netloc + parsed.path):
                raise ValueError("file:// URL needs a path, e.g. file:///var/lib/imagesearch/objects")
        elif parsed.scheme == "s3":
            if not parsed.netloc:
                raise ValueError("s3:// URL needs a bucket, e.g. s3://my-bucket/prefix")
        else:
            raise ValueError(f"must start with file:// or s3://, got {value!r}")
        return value

    @field_validator("public_base_url", "storage_endpoint_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def rate_limit(self) -> tuple[float, int, int] | None:
        """(rate per second, burst, lease) of the per-tenant limit, None when it is off."""
        rate = self.rate_limit_per_second
        if rate <= 0:
            return None
        burst = self.rate_limit_burst or max(1, math.ceil(2 * rate))
        lease = min(burst, self.rate_limit_lease or max(1, math.ceil(rate / 10)))
        return rate, burst, lease

    @property
    def shadow_candidate(self) -> SearchStrategy | None:
        """The candidate strategy shadow mode runs beside the live one, when it samples any request."""
        if self.shadow_strategy is None or self.shadow_sample_rate <= 0:
            return None
        return parse_strategy(self.shadow_strategy)

    @property
    def search_strategy(self) -> SearchStrategy:
        """The live search strategy."""
        return SearchStrategy(
            name="live",
            candidates=self.search_candidates,
            ef_search=self.search_ef_search,
            weight_vector=self.search_weight_vector,
            weight_keyword=self.search_weight_keyword,
            rrf_k=self.search_rrf_k,
            cutoff_rule=self.search_cutoff_rule,
            cutoff_gap=self.search_cutoff_gap,
            cutoff_min_results=self.search_cutoff_min_results,
            duplicate_similarity=self.search_duplicate_similarity,
        )

    @field_validator("shadow_strategy")
    @classmethod
    def _check_shadow_strategy(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_strategy(value)
            except InvalidRequest as e:
                raise ValueError(e.detail) from None
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        if self.database_replica_url is not None and self.database_replica_secret_arn is not None:
            raise ValueError("set only one of DATABASE_REPLICA_URL and DATABASE_REPLICA_SECRET_ARN")
        if self.model_dir is not None and self.model_uri is not None:
            raise ValueError("set only one of MODEL_DIR and MODEL_URI")
        if self.model_uri is not None and urlparse(self.model_uri).scheme not in ("s3", "file"):
            raise ValueError("MODEL_URI must be an s3:// or file:// URL")
        if self.auth_mode is AuthMode.JWT and not (
            self.jwt_issuer and self.jwt_audience and self.jwt_jwks_url
        ):
            raise ValueError("auth_mode jwt needs IMAGESEARCH_JWT_ISSUER, _JWT_AUDIENCE and _JWT_JWKS_URL")
        return self


class SettingsError(RuntimeError):
    """The environment holds a setting that makes no sense; the message names it."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (plus explicit overrides), with errors that name the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(part) for part in err["loc"]).upper()
            name = (
                (field if field.startswith(ENV_PREFIX) else f"{ENV_PREFIX}{field}") if field else "settings"
            )
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from e
