"""Load the functions' `app.py` modules by file, as Lambda loads them (not as part of a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from imagesearch.config import REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
FUNCTION_NAMES = ("upload", "search", "embed")


def load_function(name: str, *, root: Path = FUNCTIONS_DIR) -> ModuleType:
    """Import `root/<name>/app.py` once per process under a unique module name."""
    module_name = f"imagesearch_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = root / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.exists():
        raise FileNotFoundError(f"no function {name!r} at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
