"""Structured logging: one Powertools Logger for the whole package."""

from __future__ import annotations

from aws_lambda_powertools import Logger

# Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_LOG_LEVEL itself; functions append their name.
logger = Logger(service="imagesearch")
