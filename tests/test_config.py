"""Settings: typed, read from the environment, and loud about nonsense."""

from __future__ import annotations

import pytest

from imagesearch.config import AuthMode, SettingsError, load_settings


def test_reads_prefixed_and_bare_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal:5432/images")
    monkeypatch.setenv("IMAGESEARCH_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("IMAGESEARCH_AUTH_MODE", "api_key")
    monkeypatch.setenv("IMAGESEARCH_MAX_UPLOAD_BYTES", "1000")

    settings = load_settings()

    assert settings.database_url == "postgresql://app@db.internal:5432/images"
    assert settings.storage_url == "s3://bucket/prefix"
    assert settings.auth_mode is AuthMode.API_KEY
    assert settings.max_upload_bytes == 1000


def test_unix_socket_database_url_is_accepted() -> None:
    settings = load_settings(database_url="postgresql://postgres@/imagesearch?host=/tmp/pg")
    assert settings.database_url is not None and "host=/tmp/pg" in settings.database_url


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IMAGESEARCH_DATABASE_URL", "mysql://db/x", "postgresql://"),
        ("IMAGESEARCH_STORAGE_URL", "ftp://files/x", "file:// or s3://"),
        ("IMAGESEARCH_STORAGE_URL", "s3://", "bucket"),
        ("IMAGESEARCH_AUTH_MODE", "open-sesame", "none"),
        ("IMAGESEARCH_MAX_UPLOAD_BYTES", "-5", "greater than 0"),
        ("IMAGESEARCH_PUBLIC_BASE_URL", "localhost:8000", "http(s) URL"),
        ("IMAGESEARCH_DB_POOL_MAX", "zero", "integer"),
    ],
)
def test_bad_values_fail_with_the_variable_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    assert f"  {variable}: " in str(excinfo.value)
    assert message in str(excinfo.value)


def test_model_dir_and_uri_are_exclusive() -> None:
    with pytest.raises(SettingsError, match="MODEL_DIR and MODEL_URI"):
        load_settings(model_dir="/models/a", model_uri="s3://bucket/models/a")


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # `sam local` passes an AWS::NoValue parameter as an empty string.
    monkeypatch.setenv("MODEL_URI", "")
    monkeypatch.setenv("IMAGESEARCH_DATABASE_REPLICA_URL", "")
    settings = load_settings()
    assert settings.model_uri is None and settings.database_replica_url is None
