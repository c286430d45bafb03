"""Fixtures for the deployment tests: the SAM template and its CloudFormation translation."""

from __future__ import annotations

from typing import Any

import pytest
from support.deploy import parse_template, translate


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return parse_template()


@pytest.fixture(scope="session")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation `sam deploy` would submit for the default parameters."""
    return translate(sam_template)
