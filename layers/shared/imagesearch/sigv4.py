"""Presigned S3 GET URLs and RDS IAM tokens (Signature Version 4, query authentication) without botocore.

A cold search answers with presigned thumbnail URLs; importing boto3 and building a client only to do this
arithmetic cost about 0.25 s of every cold start (docs/deploy.md). The algorithm is AWS's
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html); tests compare every URL
with botocore's for the same instant, byte for byte. Anything this module does not cover (credentials
that are not in the environment, a profile, bucket names that need path-style on AWS) returns None and
the caller asks botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

# A bucket name that works as a DNS label under s3.<region>.amazonaws.com over TLS (no dots).
_VIRTUAL_HOSTABLE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def environment_credentials(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """The credentials botocore would use first, when they come from the environment (as in Lambda).

    None when a profile is named (botocore then prefers the profile) or the variables are not set."""
    if environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE"):
        return None
    access_key, secret_key = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    return Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)


# Container credentials (SnapStart functions get these instead of the key variables; so do ECS tasks):
# cached until shortly before they expire.
_CONTAINER_REFRESH_SECONDS = 300
_container_cache: dict[str, tuple[Credentials, float]] = {}
_container_lock = threading.Lock()


def container_credentials(
    environ: Mapping[str, str] = os.environ, *, timeout: float = 2.0
) -> Credentials | None:
    """The credentials of AWS_CONTAINER_CREDENTIALS_FULL_URI (with its authorization token), as botocore's
    container provider reads them; None when the variable is not set. Lambda with SnapStart provides its
    role's credentials this way instead of AWS_ACCESS_KEY_ID."""
    uri = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not uri or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE"):
        return None
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            token = f.read().strip()
    key = f"{uri}\n{token}"
    with _container_lock:
        cached = _container_cache.get(key)
        if cached is not None and time.time() < cached[1] - _CONTAINER_REFRESH_SECONDS:
            return cached[0]
        request = urllib.request.Request(uri, headers={"Authorization": token} if token else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the runtime's URI
            body = json.loads(response.read())
        credentials = Credentials(body["AccessKeyId"], body["SecretAccessKey"], body.get("Token"))
        expires = body.get("Expiration")
        expires_at = (
            datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
            if expires
            else time.time() + 900
        )
        _container_cache[key] = (credentials, expires_at)
        return credentials


def current_credentials(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """The environment's keys, else the container credentials: what a Lambda function has, with or
    without SnapStart. None where botocore should decide (a profile, an instance role, nothing set)."""
    found = environment_credentials(environ)
    if found is None:
        try:
            found = container_credentials(environ)
        except (OSError, ValueError, KeyError):  # unreachable or odd: botocore decides (and may retry)
            return None
    return found


def environment_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """An endpoint botocore would take from the environment (service-specific first)."""
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def presign_get(
    bucket: str,
    key: str,
    *,
    region: str,
    credentials: Credentials,
    expires_in: int,
    endpoint_url: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """A presigned GET URL for s3://bucket/key, as botocore builds it; None where it would differ.

    With an endpoint URL (an S3-compatible store), path-style `{endpoint}/{bucket}/{key}`, as the S3 client
    of this project is configured; on AWS, virtual-hosted `{bucket}.s3.amazonaws.com` whatever the region,
    as botocore presigns (the bucket's DNS name leads to its region; the signature is scoped to `region`)."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            return None
        host, scheme = parts.netloc, parts.scheme
        path = parts.path.rstrip("/") + "/" + bucket + "/" + key
    else:
        if not _VIRTUAL_HOSTABLE.match(bucket):
            return None
        host, scheme, path = f"{bucket}.s3.amazonaws.com", "https", "/" + key
    if (scheme, host.rsplit(":", 1)[-1]) in (("https", "443"), ("http", "80")):
        host = host.rsplit(":", 1)[0]

    canonical_path = quote(path, safe="/~")
    query = _presigned_query(
        host,
        canonical_path,
        service="s3",
        region=region,
        credentials=credentials,
        expires_in=expires_in,
        payload_hash="UNSIGNED-PAYLOAD",
        now=now,
    )
    return f"{scheme}://{host}{canonical_path}?{query}"


def _presigned_query(
    host: str,
    canonical_path: str,
    *,
    service: str,
    region: str,
    credentials: Credentials,
    expires_in: int,
    payload_hash: str,
    now: datetime | None,
    leading: Mapping[str, str] | None = None,
) -> str:
    """The query string of a presigned GET of `host` + `canonical_path` (SigV4 query authentication), as
    botocore orders it: the `leading` parameters, the X-Amz-* ones, then the signature."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    scope = f"{day}/{region}/{service}/aws4_request"
    params = {
        **(leading or {}),
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires_in),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.token:
        params["X-Amz-Security-Token"] = credentials.token
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        ["GET", canonical_path, canonical_query, f"host:{host}", "", "host", payload_hash]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signing_key = ("AWS4" + credentials.secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
    return f"{query}&X-Amz-Signature={signature}"


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


RDS_TOKEN_SECONDS = 900  # RDS accepts an IAM token for 15 minutes after it was made


def rds_auth_token(
    host: str, port: int, user: str, *, region: str, credentials: Credentials, now: datetime | None = None
) -> str:
    """The IAM authentication token of RDS and RDS Proxy for `user` at host:port, as botocore's
    `generate_db_auth_token` makes it: a presigned `connect` request without its scheme, valid 15 minutes.
    It is the password of one new connection (over TLS); nothing is sent to AWS to make it."""
    netloc = f"{host}:{port}"
    query = _presigned_query(
        netloc,
        "/",
        service="rds-db",
        region=region,
        credentials=credentials,
        expires_in=RDS_TOKEN_SECONDS,
        payload_hash=hashlib.sha256(b"").hexdigest(),
        now=now,
        leading={"Action": "connect", "DBUser": user},
    )
    return f"{netloc}/?{query}"
