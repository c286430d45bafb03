"""Zero-shot labels: a vocabulary of labels scored against an image vector through the text tower.

A vocabulary is a text file (IMAGESEARCH_LABELS_FILE, else the package's `vocabularies/shapes.txt` for
the demo model and `vocabularies/default.txt` for any other): one label per line, under `prompts:` lines
that give the prompt templates of the labels after them, and its `threshold:`. A label's
text vector is the normalised mean of its prompts' embeddings (CLIP's prompt ensembling). The vectors of a
(model, vocabulary) pair are computed once and kept: in this process (`LabelVectorCache`) and in the
database (`label_vectors`, migration 0009), so a cold embed function reads them instead of running the
text tower over every prompt.

An image gets a label when the label's cosine stands out from the image's scores over the whole
vocabulary: (score - mean) / std >= the threshold (`score_labels`). Raw cosines are model-specific (the
demo model puts a true label near 0.6, a real CLIP near 0.3); the standing-out score is not, though it
depends on the vocabulary, so the threshold is the vocabulary file's (docs/model.md, "Labels").
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from imagesearch.db import Database, label_vectors
from imagesearch.errors import ImageSearchError
from imagesearch.model.embedder import EmbeddingModel

VOCABULARIES = Path(__file__).parent / "vocabularies"
DEFAULT_VOCABULARY = VOCABULARIES / "default.txt"  # general labels of photos, for real CLIP models
DEMO_VOCABULARY = VOCABULARIES / "shapes.txt"  # the words the demo model knows
DEFAULT_PROMPTS = ("{label}",)
DEFAULT_THRESHOLD = 1.8  # standard deviations above the image's mean score (bench/labels.py)
MAX_LABELS = 8  # per image: the best ones when more stand out
_PROMPTS = "prompts:"
_THRESHOLD = "threshold:"


class VocabularyError(ImageSearchError):
    """A vocabulary file that cannot be read or makes no sense."""


@dataclass(frozen=True)
class Vocabulary:
    """Labels and the prompts each is embedded with; `sha256` names its content."""

    labels: tuple[str, ...]
    prompts: tuple[tuple[str, ...], ...]  # per label, its prompt texts (templates filled in)
    threshold: float = DEFAULT_THRESHOLD  # the file's own, calibrated with it

    @cached_property  # asked for on every labelled image (the cache key, the auto_tags_model version)
    def sha256(self) -> str:
        """The digest of what the vectors depend on: every label with its prompts, in order."""
        pairs = zip(self.labels, self.prompts, strict=True)
        text = "\n".join(f"{label}\t{'|'.join(prompts)}" for label, prompts in pairs)
        return hashlib.sha256(text.encode()).hexdigest()


def _fill(template: str, label: str) -> str:
    article = "an" if label[:1] in "aeiou" else "a"
    return template.replace("{label}", label).replace("{a}", article)


def parse_vocabulary(text: str, *, source: str = "vocabulary") -> Vocabulary:
    """A vocabulary from its file's text (see the module docstring); VocabularyError when it is empty,
    repeats a label or has a template without {label}."""
    templates: tuple[str, ...] = DEFAULT_PROMPTS
    threshold = DEFAULT_THRESHOLD
    labels: list[str] = []
    prompts: list[tuple[str, ...]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower().startswith(_PROMPTS):
            templates = tuple(t.strip() for t in line[len(_PROMPTS) :].split("|") if t.strip())
            if not templates or any("{label}" not in t for t in templates):
                raise VocabularyError(f"{source}:{number}: every prompt template needs {{label}}")
            continue
        if line.lower().startswith(_THRESHOLD):
            try:
                threshold = float(line[len(_THRESHOLD) :])
            except ValueError:
                raise VocabularyError(f"{source}:{number}: the threshold is not a number") from None
            if not 0 < threshold <= 10:
                raise VocabularyError(f"{source}:{number}: the threshold must be in (0, 10]")
            continue
        label = " ".join(line.lower().split())
        if label in labels:
            raise VocabularyError(f"{source}:{number}: the label {label!r} is there twice")
        labels.append(label)
        prompts.append(tuple(dict.fromkeys(_fill(t, label) for t in templates)))
    if not labels:
        raise VocabularyError(f"{source} has no labels")
    return Vocabulary(tuple(labels), tuple(prompts), threshold)


def default_vocabulary_path(model: EmbeddingModel) -> Path:
    """The package's vocabulary for a model: the demo model's own words for the demo model (a general
    vocabulary gives it labels at random), the general one for any other."""
    manifest = getattr(model, "manifest", None)
    demo = manifest is not None and manifest.architecture.startswith("demo-shapes")
    return DEMO_VOCABULARY if demo else DEFAULT_VOCABULARY


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """The vocabulary in `path`, or the package's default one."""
    path = path or DEFAULT_VOCABULARY
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise VocabularyError(f"cannot read the label vocabulary {path}: {e}") from e
    return parse_vocabulary(text, source=str(path))


def embed_vocabulary(model: EmbeddingModel, vocabulary: Vocabulary) -> np.ndarray:
    """(labels, dim) float32: each label's prompts embedded with the text tower, averaged, normalised."""
    texts = [prompt for prompts in vocabulary.prompts for prompt in prompts]
    embedded = model.embed_texts(texts)
    out = np.empty((len(vocabulary.labels), embedded.shape[1]), dtype=np.float32)
    start = 0
    for i, prompts in enumerate(vocabulary.prompts):
        mean = embedded[start : start + len(prompts)].mean(axis=0)
        out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        start += len(prompts)
    return out


def score_labels(
    image_vector: np.ndarray,
    label_matrix: np.ndarray,
    labels: tuple[str, ...],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = MAX_LABELS,
) -> list[str]:
    """The labels whose score stands out: cosine z-scored over the vocabulary >= threshold, best first."""
    scores = label_matrix @ np.asarray(image_vector, dtype=np.float32)
    spread = float(scores.std())
    if spread <= 0.0:
        return []
    standing = (scores - float(scores.mean())) / spread
    order = np.argsort(-standing, kind="stable")[:limit]
    return [labels[i] for i in order if standing[i] >= threshold]


@dataclass(frozen=True)
class LabelVectors:
    """The label vectors of one (model, vocabulary): what scoring an image needs."""

    model_id: str
    vocabulary: Vocabulary
    matrix: np.ndarray  # (labels, dim), read-only

    def labels_for(self, image_vector: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD) -> list[str]:
        """The labels of one image vector of this model."""
        return score_labels(image_vector, self.matrix, self.vocabulary.labels, threshold=threshold)


class LabelVectorCache:
    """Label vectors per (model, vocabulary sha256): from this process, else the database, else the text
    tower (then stored for every other process). `computed` counts text tower runs."""

    def __init__(self, db: Database | None) -> None:
        self._db = db
        self._items: dict[tuple[str, str], LabelVectors] = {}
        self._lock = threading.Lock()
        self.computed = 0

    def get(self, model: EmbeddingModel, vocabulary: Vocabulary) -> LabelVectors:
        key = (model.model_id, vocabulary.sha256)
        found = self._items.get(key)
        if found is not None:
            return found
        with self._lock:  # one text tower run per key, however many threads ask
            found = self._items.get(key)
            if found is None:
                found = self._load_or_compute(model, vocabulary)
                self._items[key] = found
        return found

    def _load_or_compute(self, model: EmbeddingModel, vocabulary: Vocabulary) -> LabelVectors:
        matrix = self._stored(model, vocabulary)
        if matrix is None:
            matrix = embed_vocabulary(model, vocabulary)
            self.computed += 1
            self._store(model.model_id, vocabulary, matrix)
        matrix.setflags(write=False)  # shared between threads
        return LabelVectors(model.model_id, vocabulary, matrix)

    def _stored(self, model: EmbeddingModel, vocabulary: Vocabulary) -> np.ndarray | None:
        if self._db is None:
            return None
        with self._db.connection() as conn:
            stored = label_vectors.get(conn, model_id=model.model_id, vocabulary_sha256=vocabulary.sha256)
        if stored is None or stored.labels != vocabulary.labels or stored.matrix.shape[1] != model.dim:
            return None
        return stored.matrix

    def _store(self, model_id: str, vocabulary: Vocabulary, matrix: np.ndarray) -> None:
        if self._db is None:
            return
        with self._db.connection() as conn:
            label_vectors.put(
                conn,
                model_id=model_id,
                vocabulary_sha256=vocabulary.sha256,
                labels=vocabulary.labels,
                matrix=matrix,
            )
