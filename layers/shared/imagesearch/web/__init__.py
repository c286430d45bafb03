"""The web page: static files (plain HTML, CSS and ES modules) served by the local stack at /."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
