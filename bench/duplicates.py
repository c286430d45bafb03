"""Near-duplicate grouping: precision and recall of the rule against generated truth, and its SQL cost.

Each original is a window of a photo-like scene (imagesearch.demo.photos). Its near-duplicates, the truth
groups: JPEG quality 30-95, resize 25-200%, crop up to 10% a side pair, brightness +-10%, all of these at
once, and a burst shot (the window moved by 2%, a touch brighter). Each original also has "the same subject,
another photo": the window moved by 25-40% of the scene; and every original shares its background
gradient with every other (the generator's parameters are the same, only the seed differs). Neither may be
merged with it.

Each image is decoded as ingestion decodes it (reduced to the processor's shorter side) and hashed; the
vectors come from the demo bundle. Groups are the connected components of the pairs the rule matches (what
ingestion's merge-on-match builds, in any order). Pairwise precision and recall against the truth, for the
pHash-only rule at several thresholds and the rule ingestion uses (imagesearch.images.duplicates).

    .venv/bin/python bench/duplicates.py   # ~1.5 minutes on 2 cores: 100 originals, tenants of 10k and 100k
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from imagesearch.config import DEMO_MODEL_DIR
from imagesearch.demo.photos import photo_jpeg
from imagesearch.enrichment.phash import hamming, phash
from imagesearch.images import duplicates
from imagesearch.imaging import decode_upload
from imagesearch.model.embedder import Embedder

SIZES = [(640, 480), (800, 600), (1024, 768), (480, 640), (720, 720)]
REDUCE_TO = 256  # the processor's shared decode: the thumbnail's side (the demo model's input is 64)
LIMIT = 64 * 1024 * 1024


@dataclass
class Sample:
    truth: int  # the truth group: an original and its variants
    kind: str
    data: bytes


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def samples(count: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for n in range(count):
        width, height = SIZES[n % len(SIZES)]
        scene = Image.open(io.BytesIO(photo_jpeg(int(width * 1.4), int(height * 1.4), seed=1000 + n)))
        scene.load()
        original = scene.crop((0, 0, width, height))
        out.append(Sample(n, "original", jpeg(original)))
        out.append(Sample(n, "quality", jpeg(original, int(rng.integers(30, 96)))))
        scale = float(rng.uniform(0.25, 2.0))
        resized = original.resize((max(1, round(width * scale)), max(1, round(height * scale))))
        out.append(Sample(n, "resize", jpeg(resized, 85)))
        out.append(Sample(n, "crop", jpeg(crop(original, rng, float(rng.uniform(0.03, 0.10))))))
        sign = 1 if rng.random() < 0.5 else -1
        brighter = ImageEnhance.Brightness(original).enhance(1 + sign * float(rng.uniform(0.05, 0.10)))
        out.append(Sample(n, "brightness", jpeg(brighter)))
        mixed = crop(original, rng, 0.05).resize((width // 2, height // 2))
        out.append(Sample(n, "all", jpeg(ImageEnhance.Brightness(mixed).enhance(0.92), 50)))
        dx, dy = round(width * 0.02), round(height * 0.02)
        burst = ImageEnhance.Brightness(scene.crop((dx, dy, dx + width, dy + height))).enhance(1.03)
        out.append(Sample(n, "burst", jpeg(burst)))
        shift = float(rng.uniform(0.25, 0.40))
        sx, sy = round(width * shift), round(height * shift * float(rng.uniform(0, 1)))
        # another photo of the subject: its own truth group (never merged with the original's)
        out.append(Sample(count + n, "other view", jpeg(scene.crop((sx, sy, sx + width, sy + height)))))
    return out


def crop(image: Image.Image, rng: np.random.Generator, fraction: float) -> Image.Image:
    """`fraction` of the width and of the height cut, split at random between the two sides."""
    width, height = image.size
    cut_x, cut_y = round(width * fraction), round(height * fraction)
    left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
    return image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))


def components(matched: np.ndarray) -> np.ndarray:
    """The connected component of each node of a boolean adjacency matrix (union-find)."""
    parent = list(range(matched.shape[0]))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(matched, 1)), strict=True):
        parent[find(int(i))] = find(int(j))
    return np.array([find(i) for i in range(len(parent))])


def pairwise(groups: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall over the pairs of images put in one group."""
    upper = np.triu(np.ones((len(truth), len(truth)), dtype=bool), 1)
    predicted = (groups[:, None] == groups[None, :]) & upper
    actual = (truth[:, None] == truth[None, :]) & upper
    hits = int((predicted & actual).sum())
    return hits / max(int(predicted.sum()), 1), hits / max(int(actual.sum()), 1)


def evaluate(count: int, seed: int, model_dir: Path) -> None:
    started = time.perf_counter()
    data = samples(count, seed)
    decoded = [decode_upload(s.data, max_bytes=LIMIT, max_pixels=LIMIT, reduce_to=REDUCE_TO) for s in data]
    hashes = np.array([phash(d.image) for d in decoded], dtype=np.int64)
    full = [phash(Image.open(io.BytesIO(s.data)).convert("RGB")) for s in data]
    drift = [hamming(int(a), b) for a, b in zip(hashes, full, strict=True)]
    vectors = Embedder(model_dir).embed_images([d.image for d in decoded])
    similarity = vectors @ vectors.T
    distance = np.array([[hamming(int(a), int(b)) for b in hashes] for a in hashes])
    truth = np.array([s.truth for s in data])
    kinds = np.array([s.kind for s in data])
    elapsed = time.perf_counter() - started

    print(f"{len(data)} images ({count} originals x 7 near-duplicates + 1 other view each), seed {seed}")
    print(f"pHash, reduced vs full decode: mean {np.mean(drift):.2f} bits, max {max(drift)}\n")
    print("Distance of each kind to its original (pHash bits; cosine of the demo model's vectors):\n")
    print("| kind | pHash median | pHash max | cosine median | cosine min |")
    print("|---|---:|---:|---:|---:|")
    originals = {int(s.truth): i for i, s in enumerate(data) if s.kind == "original"}
    for kind in ["quality", "resize", "crop", "brightness", "all", "burst", "other view"]:
        rows = [i for i in range(len(data)) if kinds[i] == kind]
        to = [originals[int(truth[i]) - (count if kind == "other view" else 0)] for i in rows]
        d = distance[rows, to]
        c = similarity[rows, to]
        print(f"| {kind} | {np.median(d):.0f} | {d.max()} | {np.median(c):.3f} | {c.min():.3f} |")
    different = truth[:, None] != truth[None, :]
    print(
        f"| different images (any) | {np.median(distance[different]):.0f} | min {distance[different].min()} "
        f"| {np.median(similarity[different]):.3f} | max {similarity[different].max():.3f} |"
    )

    print("\n| rule | precision | recall | other views merged |")
    print("|---|---:|---:|---:|")
    other = np.nonzero(kinds == "other view")[0]

    def report(name: str, matched: np.ndarray) -> None:
        groups = components(matched)
        precision, recall = pairwise(groups, truth)
        merged = sum(groups[i] == groups[originals[int(truth[i]) - count]] for i in other)
        print(f"| {name} | {precision:.3f} | {recall:.3f} | {merged} of {len(other)} |")

    for threshold in (6, 8, 10, 12, 14, 16):
        report(f"pHash <= {threshold}", distance <= threshold)
    rule = duplicates.matches(distance, similarity)
    report(f"ingestion's rule ({duplicates.describe_rule()})", rule)
    print(f"\n({elapsed:.0f} s to make, decode, hash and embed; vectors of {model_dir.name})")


def scale_cost(sizes: list[int]) -> None:
    """The candidate query's time for one new image in a tenant of each size (random hashes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _postgres import migrated_database

    from imagesearch.auth.tenant import get_or_create_tenant
    from imagesearch.db import Database

    print("\n| images in the tenant | candidate query, median of 20 | plan |")
    print("|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "dups") as url:
        db = Database(url)
        with db.connection() as conn:  # as many images of another tenant: the scan must keep to its own
            tenant, other = get_or_create_tenant(conn, "bench").id, get_or_create_tenant(conn, "other").id
        rng = np.random.default_rng(0)
        have = 0
        for size in sizes:
            with db.connection() as conn:
                for owner in (tenant, other):
                    conn.execute(
                        "INSERT INTO images (id, tenant_id, storage_key, status, phash) "
                        "SELECT gen_random_uuid(), %(t)s, 'k/' || gen_random_uuid(), 'ready', h "
                        "FROM unnest(%(h)s::bigint[]) h",
                        {
                            "t": owner,
                            "h": rng.integers(-(2**63), 2**63 - 1, size - have, dtype=np.int64).tolist(),
                        },
                    )
                conn.execute("ANALYZE images")
            have = size
            times = []
            plan = ""
            for _ in range(20):
                probe = int(rng.integers(-(2**63), 2**63 - 1, dtype=np.int64))
                with db.connection() as conn:
                    start = time.perf_counter()
                    duplicates.candidates(conn, tenant_id=tenant, image_id=uuid.uuid4(), phash=probe)
                    times.append(time.perf_counter() - start)
                    if not plan:
                        plan = duplicates.explain_candidates(conn, tenant_id=tenant, phash=probe)
            print(f"| {size:,} | {np.median(times) * 1000:.1f} ms | {plan} |")
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=100)
    parser.add_argument("--model-dir", type=Path, default=DEMO_MODEL_DIR, help="the bundle to embed with")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", default="10000,100000", help="tenant sizes for the candidate query's cost")
    args = parser.parse_args()
    evaluate(args.originals, args.seed, args.model_dir)
    if args.scale:  # "" to skip
        scale_cost([int(size) for size in args.scale.split(",")])


if __name__ == "__main__":
    main()
