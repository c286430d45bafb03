"""StoreLocation: the template's privacy switch reaches every function that reads EXIF, as its setting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.deploy import TEMPLATE

from imagesearch.config import REPO_ROOT, Settings
from imagesearch.local.sam_template import function_spec, load_template

VARIABLE = "IMAGESEARCH_STORE_LOCATION"
# What in a function's app.py means it reads EXIF: ingestion (the Ingestor) or the enrichment steps.
READS_EXIF = re.compile(r"\bingestor\b|\benrich_steps\b|\bread_exif\b|\bExifStep\b")


def functions_reading_exif() -> dict[str, str]:
    """{resource name: function directory} of the functions whose app.py reads EXIF."""
    found = {}
    for name, resource in load_template(TEMPLATE)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str(resource["Properties"].get("CodeUri", ""))
        app = REPO_ROOT / code_uri / "app.py"
        if app.is_file() and READS_EXIF.search(app.read_text("utf-8")):
            found[name] = app.parent.name
    return found


def test_store_location_is_a_true_false_parameter_defaulting_to_the_setting(cfn: dict[str, Any]) -> None:
    parameter = cfn["Parameters"]["StoreLocation"]
    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == str(Settings.model_fields["store_location"].default).lower() == "true"


def test_every_function_that_reads_exif_gets_the_parameter(cfn: dict[str, Any]) -> None:
    readers = functions_reading_exif()
    assert "EmbedFunction" in readers  # uploads and back-fills alike
    for name in readers:
        variables = cfn["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables.get(VARIABLE) == {"Ref": "StoreLocation"}, name


@pytest.mark.parametrize("value", ["true", "false"])
def test_the_embed_function_reads_the_parameter_as_its_setting(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = function_spec(
        load_template(TEMPLATE), REPO_ROOT, "embed", parameter_overrides={"StoreLocation": value}
    )
    assert spec.environment[VARIABLE] == value
    monkeypatch.setenv(VARIABLE, spec.environment[VARIABLE])
    assert Settings().store_location is (value == "true")
