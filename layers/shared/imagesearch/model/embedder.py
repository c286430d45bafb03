"""CLIP embeddings from an exported bundle with onnxruntime: no torch, no open_clip.

A bundle is loaded lazily and once: the manifest on first use, the text session on the first
`embed_texts`, the image session on the first `embed_images` (a search function that only embeds queries
never pays for the image tower). Sessions are created under a lock and `InferenceSession.run` is
thread-safe, so one Embedder serves every thread of a process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from imagesearch.config import DEFAULT_MAX_IMAGE_PIXELS
from imagesearch.errors import ModelUnavailable
from imagesearch.imaging import open_image
from imagesearch.logs import logger
from imagesearch.model.manifest import Manifest, Tower, Variant, load_manifest
from imagesearch.model.preprocess import PreprocessConfig, preprocess

# onnxruntime and the tokenizer (tokenizers, ftfy, regex) load with the first session, not with this module:
# the upload function imports the model package (the manifest, for /health) but never runs a model, and
# its deployment carries neither (docs/deploy.md, "Packaging").
if TYPE_CHECKING:
    import onnxruntime as ort

    from imagesearch.model.tokenizer import ClipTokenizer

ImageInput = bytes | Image.Image


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's errors for a file it cannot load."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    return (
        ort_state.Fail,
        ort_state.InvalidArgument,
        ort_state.InvalidGraph,
        ort_state.InvalidProtobuf,
        ort_state.NoSuchFile,
        ort_state.NotImplemented,
        ort_state.RuntimeException,
    )


class EmbeddingModel(Protocol):
    """What the services need from a model; tests may pass a fake."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = ...) -> np.ndarray: ...

    def embed_images(self, images: Sequence[ImageInput], *, batch_size: int = ...) -> np.ndarray: ...


class Embedder:
    """Text and image embeddings (float32, L2-normalised) from a model bundle directory."""

    def __init__(
        self,
        bundle_dir: Path | str,
        *,
        variant: Variant | None = None,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        verify: bool = True,
        spinning: bool = False,
    ) -> None:
        self.bundle_dir = Path(bundle_dir)
        # onnxruntime's intra-op threads spin while they wait for work (its default): at one query at a
        # time that doubles the CPU per query for no measurable latency (bench/ort_spinning.py)
        self._spinning = spinning
        self._requested_variant = variant
        self._providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        self._threads = threads  # 0: onnxruntime's default, one thread per core
        self._max_image_pixels = max_image_pixels
        self._verify = verify  # sha256 of each ONNX file before its session is created
        self._lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._sessions: dict[Tower, ort.InferenceSession] = {}
        self._tokenizer: ClipTokenizer | None = None

    # --- manifest-only facts (no session) ---
    @property
    def manifest(self) -> Manifest:
        """The bundle's manifest, read on first access."""
        if self._manifest is None:
            with self._lock:
                if self._manifest is None:
                    self._manifest = load_manifest(self.bundle_dir)
        return self._manifest

    @property
    def model_id(self) -> str:
        """The id stored beside every embedding (see docs/model.md)."""
        return self.manifest.model_id

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return self.manifest.embed_dim

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the image tower's input: a decode for this model may be reduced to it."""
        height, width = self.manifest.image_size
        return height, width

    @property
    def variant(self) -> Variant:
        """fp32 or int8: the requested one, else int8 when the bundle has it."""
        manifest = self.manifest
        if self._requested_variant is not None:
            if self._requested_variant not in manifest.variants:
                raise ModelUnavailable(
                    f"model bundle {self.bundle_dir} has no {self._requested_variant} variant "
                    f"(it has {', '.join(manifest.variants)})"
                )
            return self._requested_variant
        return "int8" if "int8" in manifest.variants else "fp32"

    def warm_up(self, *towers: Tower) -> None:
        """Create the sessions now (both towers by default), e.g. in a Lambda init phase."""
        for tower in towers or ("text", "image"):
            self._session(tower)

    # --- embeddings ---
    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> float32 array (n, dim), one L2-normalised row per text."""
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a sequence of texts, not a single string")
        session = self._session("text")
        tokenizer = self._tokenizer
        assert tokenizer is not None  # created with the text session
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        unpadded = self.manifest.text_sequence == "dynamic"
        for start in range(0, len(texts), batch_size):
            ids = tokenizer(texts[start : start + batch_size])
            if unpadded:  # a causal tower: the query's own tokens (under 16 for most), not 77
                from imagesearch.model.tokenizer import trimmed_length

                ids = ids[:, : max(2, trimmed_length(ids))]
            out[start : start + len(ids)] = self._run(session, "text", ids)
        return out

    def embed_images(self, images: Sequence[ImageInput], *, batch_size: int = 16) -> np.ndarray:
        """Encoded images (bytes) or PIL images -> float32 array (n, dim), one L2-normalised row each.

        Bytes are decoded with `imaging.open_image` (EXIF orientation applied; ImageRejected and
        TooManyPixels for bad input), JPEGs at the smallest DCT scale that still covers the model's
        input; PIL images are used as they are.
        """
        session = self._session("image")
        cfg = self.manifest.preprocess_config()
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pixels = np.empty((len(chunk), 3, *cfg.size), dtype=np.float32)
            for i, image in enumerate(chunk):
                # one decoded image alive at a time: a batch of large photos would otherwise hold GBs
                pixels[i] = self._pixels(image, cfg)
            out[start : start + len(chunk)] = self._run(session, "image", pixels)
        return out

    def _pixels(self, image: ImageInput, cfg: PreprocessConfig) -> np.ndarray:
        if isinstance(image, bytes | bytearray | memoryview):
            image = open_image(bytes(image), max_pixels=self._max_image_pixels, reduce_to=max(cfg.size))
        return preprocess(image, cfg)

    def _run(self, session: ort.InferenceSession, tower: Tower, inputs: np.ndarray) -> np.ndarray:
        names = self.manifest.tower(tower)
        (embeddings,) = session.run([names.output], {names.input: inputs})
        return np.asarray(embeddings, dtype=np.float32)

    # --- sessions ---
    def _session(self, tower: Tower) -> ort.InferenceSession:
        session = self._sessions.get(tower)
        if session is not None:
            return session
        manifest, variant = self.manifest, self.variant
        with self._lock:
            session = self._sessions.get(tower)
            if session is None:
                if tower == "text":
                    self._tokenizer = self._load_tokenizer(manifest)
                session = self._create_session(manifest, tower, variant)
                self._sessions[tower] = session
        return session

    def _load_tokenizer(self, manifest: Manifest) -> ClipTokenizer:
        from imagesearch.model.tokenizer import ClipTokenizer

        name = manifest.tokenizer.file
        path = manifest.verify_file(self.bundle_dir, name) if self._verify else self.bundle_dir / name
        try:
            return ClipTokenizer(path, context_length=manifest.context_length, clean=manifest.tokenizer.clean)
        except Exception as e:  # `tokenizers` raises a bare Exception for a file it cannot parse
            raise ModelUnavailable(f"cannot load the tokenizer of {self.bundle_dir}: {e}") from e

    def _create_session(self, manifest: Manifest, tower: Tower, variant: Variant) -> ort.InferenceSession:
        import onnxruntime as ort

        name = manifest.tower(tower).files[variant]
        started = time.perf_counter()
        path = manifest.verify_file(self.bundle_dir, name) if self._verify else self.bundle_dir / name
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        # one request runs one graph at a time: parallelism inside operators is what helps on 2 cores
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self._spinning else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=self._providers)
        except _ort_errors() as e:
            raise ModelUnavailable(f"onnxruntime cannot load {path}: {e}") from e
        output_dim = session.get_outputs()[0].shape[-1]
        if output_dim != manifest.embed_dim:
            raise ModelUnavailable(
                f"{path} outputs dimension {output_dim}, the manifest says {manifest.embed_dim}"
            )
        logger.info(
            "model session created",
            extra={
                "model_id": manifest.model_id,
                "tower": tower,
                "variant": variant,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return session
