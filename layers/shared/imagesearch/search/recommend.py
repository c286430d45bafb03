"""POST /recommend: "more like these, less like those", as a search plan.

Each example becomes a unit vector (a stored image's vector of the active model, a text through the text
tower, an uploaded picture through the image tower). `average` folds them into one query vector (the
weighted positives minus the weighted negatives) and runs the vector search; `best_score` sends them all
to the statement, which gathers each positive's neighbours and scores every candidate by its best
weighted similarity to a positive when that beats its best to a negative, else by minus the square of
the latter (search/sql.py `_best_score_branch`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from uuid import UUID

import numpy as np

from imagesearch.auth.tenant import Tenant
from imagesearch.db import embeddings
from imagesearch.errors import Conflict, InvalidRequest, NotFound
from imagesearch.images import repository
from imagesearch.images.schemas import strip_control_characters
from imagesearch.search.plan import Examples, SearchPlan
from imagesearch.search.rerank import unit_rows
from imagesearch.search.schemas import MAX_EXAMPLES, Example, RecommendOptions
from imagesearch.search.service import SearchService


def recommend_plan(
    service: SearchService,
    tenant: Tenant,
    request: RecommendOptions,
    *,
    uploaded: tuple[list[np.ndarray], list[np.ndarray]] = ([], []),
) -> SearchPlan:
    """The plan of a recommendation; `uploaded` holds the vectors of positive and negative pictures sent
    with it (weight 1). NotFound for an example image this tenant does not have, Conflict for one that has
    no vector yet, InvalidRequest for a text with nothing to embed."""
    examples = [(e, True) for e in request.positive] + [(e, False) for e in request.negative]
    stored = _stored_vectors(service, tenant, [e.image_id for e, _ in examples if e.image_id is not None])
    vectors: list[np.ndarray] = []
    positive: list[bool] = []
    weights: list[float] = []
    for example, is_positive in examples:
        vectors.append(stored[example.image_id] if example.image_id else _text_vector(service, example))
        positive.append(is_positive)
        weights.append(example.weight)
    for is_positive, pictures in zip((True, False), uploaded, strict=True):
        for vector in pictures:
            vectors.append(np.asarray(vector, dtype=np.float32))
            positive.append(is_positive)
            weights.append(1.0)
    if not any(positive):
        raise InvalidRequest("give at least one positive example")
    if len(vectors) > MAX_EXAMPLES:
        raise InvalidRequest(f"at most {MAX_EXAMPLES} examples, positive and negative together")
    matrix = np.stack([v / max(float(np.linalg.norm(v)), 1e-12) for v in vectors]).astype(np.float32)
    key = _example_key(request, matrix)
    exclude = tuple(dict.fromkeys(e.image_id for e, _ in examples if e.image_id is not None))
    plan = SearchPlan(
        mode="vector",
        filters=request.filters,
        limit=request.limit,
        min_score=request.min_score,
        explain=request.explain,
        exclude=exclude,
        cutoff=request.cutoff,
        example_key=key,
    )
    if request.strategy == "average":
        signs = np.where(positive, 1.0, -1.0) * np.asarray(weights)
        query = (signs[:, None] * matrix).sum(axis=0)
        norm = float(np.linalg.norm(query))
        if norm < 1e-6:
            raise InvalidRequest("the negative examples cancel the positive ones: nothing is left to search")
        return replace(plan, query_vector=(query / norm).astype(np.float32))
    return replace(plan, examples=Examples(matrix, tuple(positive), tuple(weights)))


def _text_vector(service: SearchService, example: Example) -> np.ndarray:
    text = strip_control_characters(example.text or "").strip()
    if not text:
        raise InvalidRequest("a text example has no searchable characters")
    return service.models.text_vector(service.model_for(service.strategy), text)


def _stored_vectors(service: SearchService, tenant: Tenant, image_ids: list[UUID]) -> dict[UUID, np.ndarray]:
    """The active model's vectors of this tenant's example images (one query)."""
    if not image_ids:
        return {}
    record = service.model_for(service.strategy)
    with service.db.connection() as conn:
        rows = conn.execute(
            embeddings.stored_vectors(record.id, record.dim), {"tenant": tenant.id, "ids": image_ids}
        ).fetchall()
        vectors = unit_rows([row[1] for row in rows], record.dim)
        found = {row[0]: vector for row, vector in zip(rows, vectors, strict=True)}
        for image_id in image_ids:
            if image_id not in found:
                image = repository.get(conn, tenant.id, image_id)
                if image is None:
                    raise NotFound(f"no image {image_id}")
                raise Conflict(f"image {image_id} is {image.status}: it has no embedding to search with yet")
    return found


def _example_key(request: RecommendOptions, matrix: np.ndarray) -> str:
    """What the examples were, for cursors: their vectors and weights, and the strategy."""
    digest = hashlib.sha256(matrix.tobytes())
    weights = [e.weight for e in request.positive + request.negative]
    digest.update(json.dumps([request.strategy, weights]).encode())
    return digest.hexdigest()[:16]
