"""open_clip model configs for export: custom architectures, and which tokenizer a config implies."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import open_clip

from imagesearch.model.tokenizer import CLEAN_FUNCTIONS, CleanMode


class ExportError(Exception):
    """The model cannot be exported as a bundle, or the exported bundle does not match the model."""


def register_config(arch: str, model_config: Mapping[str, Any] | Path | str) -> dict[str, Any]:
    """Make `arch` resolve to a custom config in open_clip's registry (for the rest of the process)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", arch):
        raise ExportError(f"a custom architecture needs a plain name ([A-Za-z0-9._-]), got {arch!r}")
    if isinstance(model_config, Mapping):
        config = dict(model_config)
    else:
        try:
            config = json.loads(Path(model_config).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot read model config {model_config}: {e}") from e
    config = config.get("model_cfg", config)  # also accept an open_clip_config.json from a hub repo
    missing = {"embed_dim", "vision_cfg", "text_cfg"} - set(config)
    if missing:
        raise ExportError(f"model config lacks {', '.join(sorted(missing))}")
    # open_clip only reads configs from files; the registry keeps the parsed dict after the file is gone
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{arch}.json").write_text(json.dumps(config), encoding="utf-8")
        open_clip.add_model_config(tmp)
    return config


def clean_mode_of(arch: str, config: Mapping[str, Any]) -> CleanMode:
    """The SimpleTokenizer `clean` mode of a config; refuses models that use another tokenizer."""
    text_cfg = config.get("text_cfg", {})
    kwargs = dict(text_cfg.get("tokenizer_kwargs", {}))
    if text_cfg.get("hf_tokenizer_name") or "siglip" in arch.lower():
        raise ExportError(f"{arch} uses a Hugging Face tokenizer; only CLIP's BPE tokenizer is supported")
    clean = kwargs.pop("clean", "lower")
    if kwargs or clean not in CLEAN_FUNCTIONS:
        options = ", ".join(sorted(kwargs)) or f"clean={clean!r}"
        raise ExportError(f"unsupported tokenizer options for {arch}: {options}")
    return cast(CleanMode, clean)
