"""What enrichment costs per image beside the embedding, and ingestion throughput with it on and off.

    .venv/bin/python bench/enrichment.py [--bundle DIR] [--seconds 3] [--images 24] [--rounds 2]

Without --bundle it exports ViT-B-32 (random weights, int8; needs the export extra) as bench/decode.py does;
`--bundle DIR` takes any bundle (the demo model's: layers/shared/imagesearch/model/demo_bundle). Every
measurement runs in a fresh child process with one onnxruntime thread (IMAGESEARCH_ORT_THREADS=1), so its
peak RSS is its own. The pictures are photo-like JPEGs (imagesearch.demo.photos, quality 85) at 1600x1200
carrying EXIF (date, camera, a GPS position in Lisbon).

1. Per image, each stage on its own (median wall ms and mean CPU ms of repeated calls, after warm-up; the
   ratio is to the embedding in the same run):
   - decode + thumbnail: the one reduced decode ingestion shares, and the 256 px WebP;
   - embedding: the image tower on the decoded picture (the baseline);
   - EXIF + place: reading the block from the bytes, and the offline gazetteer's lookup;
   - pHash: on the decoded picture;
   - labels: the vector scored against the vocabulary's label vectors (already cached);
   - OCR: the OCR function's own decode (it reads text at up to 2000 px, not at the model's scale) and
     the engine, on the picture without text and with six words drawn on it (56 px).
2. Ingestion: `--images` pictures (distinct seeds) through the embed pipeline (`Ingestor.ingest`, batches of
   four as the SQS trigger sends them; real PostgreSQL, filesystem storage), three ways: embedding only
   (`Ingestor(enrich=False)`: EXIF is part of the record and still read), everything the embed function
   does (place, pHash and duplicate group, labels), and that plus OCR on each image as the OCR function
   does after it. Images per second, CPU ms per image of the pipeline's process (PostgreSQL's own CPU is not
   counted), peak RSS; each configuration's best of `--rounds` runs, rounds interleaved.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from decode import measure  # noqa: E402
from embedding import peak_rss_mb  # noqa: E402

WIDTH, HEIGHT = 1600, 1200
LISBON = (38.7075, -9.1364)
WORDS = ["harbour", "ferry", "tickets", "museum", "station", "coffee"]
CONFIGS = ["embedding only", "with enrichment", "with enrichment + OCR"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="a model bundle (default: export ViT-B-32, int8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per stage")
    parser.add_argument("--images", type=int, default=24, help="pictures per ingestion run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--objects", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or Path(tmp) / "bundle"
        if args.bundle is None:
            print(f"exporting ViT-B-32 (random weights, int8) to {bundle} ...", file=sys.stderr)
            worker(args, "export", bundle)
        print("per-image stages ...", file=sys.stderr)
        stages = worker(args, "stages", bundle)
        from _postgres import migrated_database

        results: dict[str, dict[str, Any]] = {}
        with migrated_database(Path(tmp), "bench_enrichment") as url:
            for round_ in range(args.rounds):
                for config in CONFIGS:
                    print(f"round {round_ + 1}: ingestion, {config} ...", file=sys.stderr)
                    result = worker(args, config, bundle, url, Path(tmp) / f"objects-{round_}-{len(results)}")
                    best = results.get(config)
                    if best is None or result["images_per_s"] > best["images_per_s"]:
                        results[config] = result
        print_tables(stages, results, args)
    return 0


def worker(
    args: argparse.Namespace, what: str, bundle: Path, url: str | None = None, objects: Path | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", what, "--bundle", str(bundle)]
    command += ["--seconds", str(args.seconds), "--images", str(args.images)]
    command += ["--database-url", url] if url else []
    command += ["--objects", str(objects)] if objects else []
    env = {"IMAGESEARCH_ORT_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{what} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def photo(seed: int, *, words: bool = False) -> bytes:
    """A 1600x1200 photo-like JPEG with EXIF (date, camera, GPS in Lisbon); six words drawn on it if asked."""
    from PIL import Image

    from imagesearch.demo.photos import exif_block, photo_jpeg

    exif = exif_block(make="Canon", model="Canon EOS R5", taken="2024:07:14 10:30:00", gps=LISBON)
    data = photo_jpeg(WIDTH, HEIGHT, seed=seed, exif=exif)
    if not words:
        return data
    from imagesearch.demo.text_pictures import draw_words, font, system_fonts

    picture = Image.open(io.BytesIO(data)).convert("RGB")
    fonts = system_fonts()
    draw_words(picture, WORDS, face=font(fonts[0] if fonts else None, 56), seed=seed)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    if args.worker == "export":
        import open_clip

        from imagesearch.export import export_bundle

        model = open_clip.create_model("ViT-B-32", pretrained=None)
        export_bundle(model, args.bundle, arch="ViT-B-32", pretrained="none", int8=True)
        return {}
    if args.worker == "stages":
        return stages(args)
    return ingestion(args)


def stages(args: argparse.Namespace) -> dict[str, Any]:
    from imagesearch.enrichment import places
    from imagesearch.enrichment.ocr import OcrEngine
    from imagesearch.enrichment.phash import phash
    from imagesearch.images.thumbnails import THUMBNAIL_SIZE, make_thumbnail
    from imagesearch.imaging import decode_upload
    from imagesearch.ingest.ocr import OcrStep
    from imagesearch.ingest.processor import read_photo_exif
    from imagesearch.model.embedder import Embedder
    from imagesearch.model.labels import (
        default_vocabulary_path,
        embed_vocabulary,
        load_vocabulary,
        score_labels,
    )

    model = Embedder(args.bundle, threads=1)
    plain, texted = photo(1), photo(1, words=True)
    side = max(THUMBNAIL_SIZE, *model.image_size)

    def decode(data: bytes) -> Any:
        return decode_upload(data, max_bytes=50 << 20, max_pixels=100_000_000, reduce_to=side)

    decoded = decode(plain)
    vector = model.embed_images([decoded.image])[0]
    vocabulary = load_vocabulary(default_vocabulary_path(model))
    begin = time.perf_counter()
    label_matrix = embed_vocabulary(model, vocabulary)
    vocabulary_ms = (time.perf_counter() - begin) * 1000
    ocr = OcrStep(OcrEngine(threads=1), max_pixels=100_000_000)
    no_id = uuid.uuid4()
    places.lookup(*LISBON)  # the gazetteer loads once per process, not per image

    def exif_and_place() -> object:
        exif = read_photo_exif(plain, store_location=True, image_id="bench")
        assert exif.latitude is not None and exif.longitude is not None
        return places.lookup(exif.latitude, exif.longitude)

    found = (ocr.read_text(texted, image_id=no_id) or "").lower()
    rows = {
        "decode + thumbnail": measure(lambda: make_thumbnail(decode(plain).image), args.seconds),
        "embedding (image tower)": measure(lambda: model.embed_images([decoded.image]), args.seconds),
        "EXIF + place": measure(exif_and_place, args.seconds),
        "pHash": measure(lambda: phash(decoded.image), args.seconds),
        "labels (cached vocabulary)": measure(
            lambda: score_labels(vector, label_matrix, vocabulary.labels, threshold=vocabulary.threshold),
            args.seconds,
        ),
        "OCR, no text": measure(lambda: ocr.read_text(plain, image_id=no_id), args.seconds),
        "OCR, six words": measure(lambda: ocr.read_text(texted, image_id=no_id), args.seconds),
    }
    return {
        "rows": rows,
        "vocabulary": {"labels": len(vocabulary.labels), "cold_ms": vocabulary_ms},
        "ocr_words_found": sum(word in found for word in WORDS),
        "model": model.model_id,
        "peak_rss_mb": peak_rss_mb(),
    }


def ingestion(args: argparse.Namespace) -> dict[str, Any]:
    from imagesearch.config import DEFAULT_TENANT_ID, load_settings
    from imagesearch.ingest.enrich import EnrichSource, Pending
    from imagesearch.ingest.events import ObjectEvent
    from imagesearch.ingest.processor import Ingestor, Outcome
    from imagesearch.runtime import configure

    config = args.worker
    enrich = config != "embedding only"
    settings = load_settings(
        database_url=args.database_url,
        storage_url=f"file://{args.objects}",
        model_dir=args.bundle,
        ort_threads=1,
        labels_enabled=enrich,
        ocr=config.endswith("OCR"),
    )
    runtime = configure(settings)
    db, storage = runtime.database, runtime.storage
    ingestor = Ingestor(
        db,
        storage,
        runtime.models.embedding_models,
        max_upload_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        labeller=runtime.labeller,
        enrich=enrich,
    )
    ocr = runtime.ocr_step if config.endswith("OCR") else None
    warm = [photo(10_000 + n) for n in range(4)]  # loads the models, the gazetteer, the label vectors
    pictures = [photo(n, words=n % 2 == 0) for n in range(args.images)]
    tenant = uuid.UUID(DEFAULT_TENANT_ID)

    def ingest(batch: list[bytes]) -> None:
        events, keys = [], []
        for data in batch:
            image_id = uuid.uuid4()
            key = f"originals/{tenant}/{image_id}"
            with db.connection() as conn:
                conn.execute(
                    "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'x.jpg')",
                    (image_id, tenant, key),
                )
            info = storage.put(key, data, content_type="image/jpeg")
            events.append(ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put"))
            keys.append((image_id, key))
        assert ingestor.ingest(events) == [Outcome.READY] * len(batch)
        if ocr is not None:
            limits = runtime.enrich_limits
            for image_id, key in keys:
                ocr.enrich(db, EnrichSource(storage, Pending(image_id, tenant, key), limits))

    ingest(warm)
    with db.connection() as conn:
        conn.execute("DELETE FROM images")  # counted below: the measured pictures only
    cpu_start, begin = time.process_time(), time.perf_counter()
    for start in range(0, len(pictures), 4):
        ingest(pictures[start : start + 4])
    wall, cpu = time.perf_counter() - begin, time.process_time() - cpu_start
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE place_city IS NOT NULL), "
            "count(*) FILTER (WHERE phash IS NOT NULL), count(*) FILTER (WHERE auto_tags_model IS NOT NULL), "
            "count(*) FILTER (WHERE ocr_text IS NOT NULL) FROM images WHERE status = 'ready'"
        ).fetchone()
        conn.execute("DELETE FROM images")  # the next configuration starts from an empty table
    assert row is not None
    return {
        "images_per_s": len(pictures) / wall,
        "cpu_ms": cpu / len(pictures) * 1000,
        "peak_rss_mb": peak_rss_mb(),
        "stored": dict(zip(["place", "phash", "labels", "ocr text"], row, strict=True)),
    }


def print_tables(
    stages: dict[str, Any], results: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    rows = stages["rows"]
    base = rows["embedding (image tower)"]
    print(f"\nPer image, {WIDTH}x{HEIGHT} JPEG, model {stages['model']}, one onnxruntime thread")
    print(f"(peak RSS of the process holding every stage: {stages['peak_rss_mb']:.0f} MB)\n")
    print("| stage | wall ms (p50) | CPU ms | CPU vs the embedding |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        ratio = row["cpu_ms"] / base["cpu_ms"]
        print(f"| {name} | {row['p50_ms']:.2f} | {row['cpu_ms']:.2f} | {ratio:.2f}x |")
    vocabulary = stages["vocabulary"]
    print(
        f"\nLabel vectors computed cold: {vocabulary['labels']} labels in {vocabulary['cold_ms']:.0f} ms "
        f"(once per model and vocabulary; then read from the database). OCR found "
        f"{stages['ocr_words_found']} of {len(WORDS)} words drawn."
    )
    first = results[CONFIGS[0]]
    print(f"\nIngestion, {args.images} pictures (half with words), batches of 4, best of {args.rounds}\n")
    print("| configuration | images/s | vs embedding only | CPU ms/image | peak RSS MB | stored |")
    print("|---|---:|---:|---:|---:|---|")
    for config in CONFIGS:
        result = results[config]
        stored = ", ".join(f"{k} {v}" for k, v in result["stored"].items())
        ratio = result["images_per_s"] / first["images_per_s"]
        print(
            f"| {config} | {result['images_per_s']:.2f} | {ratio:.2f}x "
            f"| {result['cpu_ms']:.0f} | {result['peak_rss_mb']:.0f} | {stored} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
