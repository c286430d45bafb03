"""The environment variables the code reads: a deployment that sets another one has misspelt it (Settings
ignores unknown variables), unless it is a library's own."""

from __future__ import annotations

from imagesearch.config import ENV_PREFIX, Settings

# Read by boto3 and by imagesearch.sigv4 (S3-compatible storage outside AWS takes an access key).
AWS_CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"})


def known_environment() -> set[str]:
    """IMAGESEARCH_<FIELD> of every setting, the bare aliases (DATABASE_URL, MODEL_URI...) and AWS's own."""
    names = set(AWS_CREDENTIALS)
    for name, field in Settings.model_fields.items():
        names.add(f"{ENV_PREFIX}{name.upper()}")
        alias = field.validation_alias
        names |= set(getattr(alias, "choices", []) or ([alias] if isinstance(alias, str) else []))
    return names
