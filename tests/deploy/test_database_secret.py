"""IMAGESEARCH_DATABASE_SECRET_ARN: the database URL read from Secrets Manager once per container."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from imagesearch.config import load_settings
from imagesearch.db.secret import (
    SecretFormatError,
    database_url_from_secret,
    forget_secrets,
    url_from_secret_string,
)
from imagesearch.errors import DatabaseUnavailable
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
