"""`manifest.json`: what a model bundle holds and how to feed it; checked against the files it lists."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagesearch.errors import ModelUnavailable
from imagesearch.model.preprocess import PreprocessConfig

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1

Variant = Literal["fp32", "int8"]
Tower = Literal["image", "text"]
# open_clip's `clean` options for SimpleTokenizer ("lower" is the default of every CLIP config).
CleanMode = Literal["lower", "whitespace", "canonicalize"]


class FileEntry(BaseModel):
    """Digest and size of one file of the bundle."""

    model_config = ConfigDict(frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class TowerFiles(BaseModel):
    """The ONNX file per variant of one tower, and its input/output names."""

    model_config = ConfigDict(frozen=True)

    input: str
    output: str
    files: dict[Variant, str]


class TokenizerSpec(BaseModel):
    """The tokenizer file (Hugging Face `tokenizers` JSON with CLIP's BPE) and open_clip's cleaning mode."""

    model_config = ConfigDict(frozen=True)

    file: str = "tokenizer.json"
    clean: CleanMode = "lower"


class Manifest(BaseModel):
    """Everything the runtime needs to know about a bundle; written by `imagesearch model export`."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    format_version: int = FORMAT_VERSION
    model_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    architecture: str
    pretrained: str
    embed_dim: int = Field(gt=0)
    image_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    resize_mode: Literal["shortest", "longest", "squash"] = "shortest"
    fill_color: int = 0
    context_length: int = Field(gt=1)
    # "dynamic": the text tower takes (n, k) ids for any k <= context_length and runs on a query's own
    # tokens (a causal tower pooled at the end-of-text token); "padded": always context_length ids.
    text_sequence: Literal["padded", "dynamic"] = "padded"
    vocab_size: int = Field(gt=0)
    tokenizer: TokenizerSpec = TokenizerSpec()
    image: TowerFiles
    text: TowerFiles
    variants: list[Variant]
    files: dict[str, FileEntry]
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    open_clip_version: str
    torch_version: str
    onnx_opset: int

    def tower(self, tower: Tower) -> TowerFiles:
        """The files and names of the image or text tower."""
        return self.image if tower == "image" else self.text

    def preprocess_config(self) -> PreprocessConfig:
        """The image transform this model was trained with."""
        return PreprocessConfig(
            size=self.image_size,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            resize_mode=self.resize_mode,
            fill_color=self.fill_color,
        )

    def verify_file(self, bundle_dir: Path, name: str) -> Path:
        """The path of a listed file, after checking its size and sha256; ModelUnavailable if they differ."""
        entry = self.files.get(name)
        if entry is None:
            raise ModelUnavailable(f"{name} is not listed in the manifest of {bundle_dir}")
        path = bundle_dir / name
        if not path.is_file():
            raise ModelUnavailable(f"model bundle {bundle_dir} lacks {name}")
        if path.stat().st_size != entry.size:
            raise ModelUnavailable(f"{path} has {path.stat().st_size} bytes, the manifest says {entry.size}")
        if sha256_file(path) != entry.sha256:
            raise ModelUnavailable(f"{path} does not match the sha256 in the manifest")
        return path

    def verify(self, bundle_dir: Path) -> None:
        """Check every file the manifest lists."""
        for name in self.files:
            self.verify_file(bundle_dir, name)


def sha256_file(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> FileEntry:
    """Digest and size of a file, for writing a manifest."""
    return FileEntry(sha256=sha256_file(path), size=path.stat().st_size)


def load_manifest(bundle_dir: Path) -> Manifest:
    """Read and validate `manifest.json` of a bundle; ModelUnavailable if missing or invalid."""
    path = bundle_dir / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ModelUnavailable(f"no model bundle at {bundle_dir} ({MANIFEST_NAME} is missing)") from e
    except OSError as e:
        raise ModelUnavailable(f"cannot read {path}: {e}") from e
    try:
        manifest = Manifest.model_validate_json(text)
    except ValidationError as e:
        raise ModelUnavailable(f"{path} is not a valid manifest: {e}") from e
    if manifest.format_version != FORMAT_VERSION:
        raise ModelUnavailable(
            f"{path} has format_version {manifest.format_version}, expected {FORMAT_VERSION}"
        )
    return manifest


def write_manifest(manifest: Manifest, bundle_dir: Path) -> Path:
    """Write `manifest.json` (pretty-printed, so reviewers can read a bundle's diff)."""
    path = bundle_dir / MANIFEST_NAME
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
