"""The database URL from a Secrets Manager secret (IMAGESEARCH_DATABASE_SECRET_ARN), read once per container.

A secret may hold the URL as a plain string, JSON with a "url" key, or the keys RDS and Secrets Manager's
database rotation write: username, password, host, port, dbname.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from imagesearch.config import DatabaseUrl
from imagesearch.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_urls: dict[str, str] = {}
_lock = threading.Lock()


class SecretFormatError(DatabaseUnavailable):
    """The secret holds nothing a database URL can be made from (the message says what is wrong)."""


def url_from_secret_string(value: str) -> str:
    """A postgresql:// URL from the secret's text, in any of the formats above."""
    text = value.strip()
    fields: Any = None
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as e:
            raise SecretFormatError(f"the database secret is not valid JSON: {e.msg}") from None
    if isinstance(fields, dict):
        if isinstance(fields.get("url"), str):
            text = fields["url"]
        else:
            missing = [key for key in ("username", "password", "host") if not fields.get(key)]
            if missing:
                raise SecretFormatError(
                    'the database secret needs "url", or username, password and host; '
                    f"it lacks {', '.join(missing)}"
                )
            user, password = quote(str(fields["username"]), safe=""), quote(str(fields["password"]), safe="")
            dbname = quote(str(fields.get("dbname") or "postgres"), safe="")
            port = str(fields.get("port") or 5432)
            if not port.isdigit():
                raise SecretFormatError("the database secret's port is not a number")
            text = f"postgresql://{user}:{password}@{fields['host']}:{port}/{dbname}"
    try:
        return TypeAdapter(DatabaseUrl).validate_python(text)
    except ValueError:
        # Not chained: the validation error quotes its input, and the secret's value must not reach a log.
        raise SecretFormatError("the database secret does not hold a valid postgresql:// URL") from None


def database_url_from_secret(
    arn: str, *, region: str | None = None, client: SecretsManagerClient | None = None
) -> str:
    """The URL in secret `arn`, fetched on the first call only (a failed fetch is retried on the next)."""
    url = _urls.get(arn)
    if url is not None:
        return url
    with _lock:
        url = _urls.get(arn)
        if url is None:
            url = url_from_secret_string(_fetch(arn, region=region, client=client))
            _urls[arn] = url
    return url


def reread_secret(arn: str, *, region: str | None = None, client: SecretsManagerClient | None = None) -> str:
    """The URL in secret `arn` fetched again (after the server refused the cached one), and cached."""
    url = url_from_secret_string(_fetch(arn, region=region, client=client))
    with _lock:
        _urls[arn] = url
    return url


def _fetch(arn: str, *, region: str | None, client: SecretsManagerClient | None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        # The ARN names the secret's region (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME).
        parts = arn.split(":")
        client = boto3.client("secretsmanager", region_name=region or (parts[3] if len(parts) > 3 else None))
    try:
        response = client.get_secret_value(SecretId=arn)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        raise DatabaseUnavailable(f"cannot read the database secret {arn}: {code}") from e
    except BotoCoreError as e:
        raise DatabaseUnavailable(f"cannot reach Secrets Manager for {arn}: {e}") from e
    value = response.get("SecretString")
    if value is None:
        raise SecretFormatError(f"the database secret {arn} holds binary data, not a string")
    return value


def forget_secrets() -> None:
    """Drop the URLs read so far (tests; a rotated secret is read again by the next container)."""
    with _lock:
        _urls.clear()
