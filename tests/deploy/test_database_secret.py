"""Database credentials: the URL from Secrets Manager (read once per container, and again when the server
refuses its password after a rotation), the replica's own secret, and IAM tokens per connection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from imagesearch.config import SettingsError, load_settings
from imagesearch.db import secret as secret_module
from imagesearch.db.credentials import connection_source
from imagesearch.db.secret import (
    SecretFormatError,
    database_url_from_secret,
    forget_secrets,
    url_from_secret_string,
)
from imagesearch.errors import DatabaseUnavailable
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.runtime import Runtime


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the region comes from the ARN
    forget_secrets()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")
    forget_secrets()


def create(client: Any, value: str) -> str:
    arn: str = client.create_secret(Name="imagesearch/db", SecretString=value)["ARN"]
    return arn


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://app:s3cret@db.internal:5432/images",
        json.dumps({"url": "postgresql://app:s3cret@db.internal:5432/images"}),
        json.dumps(
            {
                "engine": "postgres",
                "username": "app",
                "password": "s3cret",
                "host": "db.internal",
                "port": 5432,
                "dbname": "images",
            }
        ),
    ],
    ids=["plain", "json-url", "rds-keys"],
)
def test_every_documented_secret_format_gives_the_url(secrets: Any, value: str) -> None:
    url = database_url_from_secret(create(secrets, value))
    assert conninfo_to_dict(url) == {
        "user": "app",
        "password": "s3cret",
        "host": "db.internal",
        "port": "5432",
        "dbname": "images",
    }


def test_rds_keys_with_url_special_characters_are_quoted() -> None:
    password = "p@ss:w/rd?#%"
    url = url_from_secret_string(json.dumps({"username": "a@b", "password": password, "host": "h"}))
    assert conninfo_to_dict(url) == {
        "user": "a@b",
        "password": password,
        "host": "h",
        "port": "5432",
        "dbname": "postgres",
    }


def test_the_secret_is_read_once_per_container(secrets: Any) -> None:
    arn = create(secrets, "postgresql://app:one@db/images")
    assert database_url_from_secret(arn).endswith(":one@db/images")
    secrets.put_secret_value(SecretId=arn, SecretString="postgresql://app:two@db/images")
    assert database_url_from_secret(arn).endswith(":one@db/images")


@pytest.mark.parametrize(
    "value, message",
    [
        ("mysql://app:hunter2@db/images", "does not hold a valid postgresql:// URL"),
        ('{"username": "app", "password": "hunter2"}', "it lacks host"),
        ('{"url": ', "not valid JSON"),
        ('{"username": "app", "password": "hunter2", "host": "db", "port": "x"}', "port is not a number"),
    ],
)
def test_a_malformed_secret_says_what_is_wrong_without_repeating_it(
    secrets: Any, value: str, message: str
) -> None:
    with pytest.raises(SecretFormatError, match=message) as raised:
        database_url_from_secret(create(secrets, value))
    assert "hunter2" not in str(raised.value) and raised.value.__cause__ is None


def test_an_unreadable_secret_is_a_database_outage_and_is_read_again_next_time(secrets: Any) -> None:
    arn = create(secrets, "postgresql://app:x@db/images")

    class Denied:
        def get_secret_value(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    with pytest.raises(DatabaseUnavailable, match="AccessDeniedException"):
        database_url_from_secret(arn, client=Denied())
    assert database_url_from_secret(arn) == "postgresql://app:x@db/images"


def test_the_database_is_the_one_the_secret_names(secrets: Any, database_url: str) -> None:
    """GIVEN only a secret ARN in the settings, THEN the pool reaches the database the secret names."""
    arn = create(secrets, json.dumps({"url": database_url}))
    runtime = Runtime(load_settings(database_secret_arn=arn))
    try:
        database = runtime.database
        assert database.url == database_url
        database.ping()
    finally:
        runtime.close()


# --- rotation: the server refuses the cached password, the secret is read again --------------------------

ROTATED_ROLE = "rotated_app"


@pytest.fixture
def password_role(postgres: EmbeddedPostgres, database_url: str) -> Iterator[Callable[[str], str]]:
    """A login role that must present a password (scram) on the test database; yields a function that sets
    its password and returns the URL with it."""
    hba = postgres.data_dir / "pg_hba.conf"
    rule = f"local all {ROTATED_ROLE} scram-sha-256\n"
    if rule not in hba.read_text("utf-8"):
        hba.write_text(rule + hba.read_text("utf-8"), "utf-8")
    parts = conninfo_to_dict(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"DROP ROLE IF EXISTS {ROTATED_ROLE}")
        conn.execute(f"CREATE ROLE {ROTATED_ROLE} LOGIN PASSWORD 'first'")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROTATED_ROLE}")

    def set_password(password: str) -> str:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {ROTATED_ROLE} PASSWORD '{password}'")
        return f"postgresql://{ROTATED_ROLE}:{password}@/{parts['dbname']}?host={parts['host']}"

    yield set_password
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROTATED_ROLE,)
        )
        conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROTATED_ROLE}")
        conn.execute(f"DROP ROLE IF EXISTS {ROTATED_ROLE}")


def drop_connections(database_url: str) -> None:
    """What a proxy restart or an idle timeout does to a frozen container's connection."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROTATED_ROLE,)
        )


def test_a_rotated_password_is_read_again_and_the_request_succeeds(
    secrets: Any, password_role: Callable[[str], str], database_url: str
) -> None:
    """GIVEN a container that read the secret before a rotation, WHEN its connection must be made again,
    THEN the refused password makes it read the secret once more, and the request succeeds."""
    arn = create(secrets, password_role("first"))
    runtime = Runtime(load_settings(database_secret_arn=arn, db_idle_check_seconds=0))
    try:
        assert runtime.database.read("SELECT current_user") == [(ROTATED_ROLE,)]
        # The rotation: the role's password and the secret change together; the container knows neither.
        secrets.put_secret_value(SecretId=arn, SecretString=password_role("second"))
        drop_connections(database_url)
        assert runtime.database.read("SELECT current_user") == [(ROTATED_ROLE,)]
        assert ":second@" in runtime.database.url
    finally:
        runtime.close()


def test_a_wrong_password_that_did_not_change_is_a_503_not_a_loop(
    secrets: Any, password_role: Callable[[str], str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    password_role("first")
    wrong = password_role("first").replace(":first@", ":wrong@")
    arn = create(secrets, wrong)
    reads = []
    original = secret_module._fetch

    def counting_fetch(*args: Any, **kwargs: Any) -> str:
        reads.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(secret_module, "_fetch", counting_fetch)
    runtime = Runtime(load_settings(database_secret_arn=arn, db_connect_timeout=2))
    try:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                runtime.database.read("SELECT 1")
        # Read when the pool opened, and once more on the first refusal; then no more for 10 s.
        assert len(reads) == 2
    finally:
        runtime.close()


def test_the_replica_has_a_secret_of_its_own(secrets: Any, database_url: str) -> None:
    primary = create(secrets, database_url)
    replica = secrets.create_secret(
        Name="imagesearch/replica", SecretString=json.dumps({"url": database_url + "&application_name=r"})
    )["ARN"]
    runtime = Runtime(load_settings(database_secret_arn=primary, database_replica_secret_arn=replica))
    try:
        assert runtime.search_database is not runtime.database
        assert runtime.search_database.url.endswith("application_name=r")
        assert runtime.search_database.read("SELECT 1") == [(1,)]
    finally:
        runtime.close()
    with pytest.raises(SettingsError, match="only one of DATABASE_REPLICA_URL"):
        load_settings(
            database_url=database_url, database_replica_url=database_url, database_replica_secret_arn=replica
        )


# --- IAM authentication: a token per new connection --------------------------------------------------------


def test_iam_authentication_presents_a_fresh_token_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    host = "imagesearch.proxy-c1x2y3z4.eu-west-1.rds.amazonaws.com"
    source = connection_source(
        load_settings(database_url=f"postgresql://app@{host}:5432/images", database_iam_auth=True),
        role="primary",
    )
    assert source is not None
    kwargs = source.connect_kwargs()
    assert kwargs["sslmode"] == "require"
    token = kwargs["password"]
    assert token.startswith(f"{host}:5432/?Action=connect&DBUser=app&")
    query = parse_qs(urlsplit("https://" + token).query)
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "rds-db"]  # region from the host
    assert query["X-Amz-Security-Token"] == ["session"]
    # A URL that names its TLS mode keeps it (verify-full with the RDS bundle, say).
    strict = connection_source(
        load_settings(
            database_url=f"postgresql://app@{host}:5432/images?sslmode=verify-full", database_iam_auth=True
        ),
        role="primary",
    )
    assert strict is not None and "sslmode" not in strict.connect_kwargs()
    # Without IAM, nothing is added: the URL (or the secret's) carries the password.
    plain = connection_source(
        load_settings(database_url=f"postgresql://app:pw@{host}/images"), role="primary"
    )
    assert plain is not None and plain.connect_kwargs() == {}
