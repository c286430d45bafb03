"""From stored JPEG bytes to the vector at batch 1: torch eager against int8 ONNX, full and reduced decode.

    .venv/bin/python bench/decode.py [--arch ViT-B-32] [--threads 2] [--bundle DIR] [--seconds 5]
    .venv/bin/python bench/decode.py --exif [--seconds 5]     # EXIF's cost beside the decode; no torch

Like bench/embedding.py (whose export it reuses: random weights, --keep DIR / --bundle DIR), each runtime and
image runs in a fresh subprocess so that its peak RSS is its own. Each call takes the bytes of one photo-like
JPEG (gradients, noise and shapes, quality 85; written by this process) at 1600x1200 or at 4000x3000 and
returns its vector:

- torch: open_clip's usual path, `Image.open(...).convert("RGB")`, its eval transform, `encode_image`;
- onnx-int8 full: `imaging.open_image` at full size, then `Embedder.embed_images` on the decoded image
  (the path before: what `embed_images(bytes)` and ingestion did);
- onnx-int8 reduced: `Embedder.embed_images(bytes)`: a JPEG decoded at the smallest DCT scale that covers
  the model input (Pillow's draft mode), then the same preprocessing.

Per image (the run with the lowest median of `--rounds` fresh runs per case, rounds interleaved): median
wall time, CPU time (all threads: user + system), peak RSS of the process, and the median of the model
alone on an already preprocessed input; ratios are against torch in this run.
The cosine of each ONNX vector to torch's is printed too. Needs the export extra.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from embedding import WEIGHTS_FILE, peak_rss_mb, subprocess_worker  # noqa: E402

RUNTIMES = ["torch", "onnx-int8-full", "onnx-int8-reduced"]
SIZES = ((1600, 1200), (4000, 3000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case")
    parser.add_argument("--rounds", type=int, default=2, help="each case's best median of this many runs")
    parser.add_argument("--bundle", type=Path, help="reuse a bundle exported by bench/embedding.py --keep")
    parser.add_argument("--keep", type=Path, help="export into this directory and keep it")
    parser.add_argument("--exif", action="store_true", help="only the EXIF rows: what reading it costs")
    parser.add_argument("--worker", choices=[*RUNTIMES, "export", "photos"], help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.exif:
        print_exif_table(args.seconds)
        return 0
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or args.keep or Path(tmp) / "bundle"
        if args.bundle is None:
            print(f"exporting {args.arch} (random weights, int8) to {bundle} ...", file=sys.stderr)
            worker("export", bundle, args)
        # drawn in a child: Linux carries a parent's peak RSS into the children it starts afterwards
        worker("photos", bundle, args, Path(tmp))
        results: dict[str, dict[str, Any]] = {runtime: {} for runtime in RUNTIMES}
        for round_ in range(args.rounds):  # rounds interleaved: a noisy minute hits one run of each case
            for width, height in SIZES:
                name = f"{width}x{height}"
                for runtime in RUNTIMES:
                    print(f"round {round_ + 1}: {runtime} on {name} ...", file=sys.stderr)
                    result = worker(runtime, bundle, args, Path(tmp) / f"{name}.jpg")
                    best = results[runtime].get(name)
                    if best is None or result["p50_ms"] < best["p50_ms"]:
                        results[runtime][name] = result
        print_table(results, args)
    return 0


def worker(runtime: str, bundle: Path, args: argparse.Namespace, image: Path | None = None) -> dict[str, Any]:
    extra = ["--image", str(image)] if image is not None else []
    return subprocess_worker(runtime, bundle, args, script=__file__, extra=extra)


def measure(call: Callable[[], object], seconds: float) -> dict[str, float]:
    """Median wall ms and mean CPU ms (user + system, every thread) per call, after two warm-up calls."""
    call()
    call()
    times: list[float] = []
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 300):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    return {"p50_ms": statistics.median(times) * 1000, "cpu_ms": cpu / len(times) * 1000}


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    if args.worker == "export":
        import open_clip
        import torch

        from imagesearch.export import export_bundle

        model = open_clip.create_model(args.arch, pretrained=None)
        export_bundle(model, args.bundle, arch=args.arch, pretrained="none", int8=True)
        torch.save(model.state_dict(), args.bundle.parent / f"{args.bundle.name}-{WEIGHTS_FILE}")
        return {}
    if args.worker == "photos":
        from imagesearch.demo.photos import photo_jpeg

        for width, height in SIZES:
            (args.image / f"{width}x{height}.jpg").write_bytes(photo_jpeg(width, height))
        return {}
    data = args.image.read_bytes()
    embed, model_only = torch_embedder(args, data) if args.worker == "torch" else onnx_embedder(args, data)
    result = measure(lambda: embed(data), args.seconds)
    model_ms = measure(model_only, args.seconds)["p50_ms"]
    return {**result, "model_ms": model_ms, "vector": embed(data).tolist(), "peak_rss_mb": peak_rss_mb()}


def torch_embedder(args: argparse.Namespace, data: bytes) -> tuple[Callable[[bytes], Any], Callable[[], Any]]:
    import open_clip
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    model, _, transform = open_clip.create_model_and_transforms(args.arch, pretrained=None)
    weights = torch.load(args.bundle.parent / f"{args.bundle.name}-{WEIGHTS_FILE}", weights_only=True)
    model.load_state_dict(weights)
    model.eval()

    def embed(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        with torch.inference_mode():
            return model.encode_image(transform(image).unsqueeze(0), normalize=True)[0].numpy()

    pixels = transform(Image.open(io.BytesIO(data)).convert("RGB")).unsqueeze(0)

    def model_only() -> Any:
        with torch.inference_mode():
            return model.encode_image(pixels, normalize=True)

    return embed, model_only


def onnx_embedder(args: argparse.Namespace, data: bytes) -> tuple[Callable[[bytes], Any], Callable[[], Any]]:
    from imagesearch.imaging import open_image
    from imagesearch.model.embedder import Embedder
    from imagesearch.model.preprocess import preprocess

    embedder = Embedder(args.bundle, variant="int8", threads=args.threads)
    embedder.warm_up("image")
    max_pixels = embedder._max_image_pixels

    def full(data: bytes) -> Any:
        return embedder.embed_images([open_image(data, max_pixels=max_pixels)])[0]

    def reduced(data: bytes) -> Any:
        return embedder.embed_images([data])[0]

    session, cfg = embedder._session("image"), embedder.manifest.preprocess_config()
    # reduced: a full decode here would be the reduced worker's peak RSS
    pixels = preprocess(open_image(data, max_pixels=max_pixels, reduce_to=max(cfg.size)), cfg)[None]

    def model_only() -> Any:
        return embedder._run(session, "image", pixels)

    return (full if args.worker == "onnx-int8-full" else reduced), model_only


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    import numpy as np

    torch_result = results["torch"]
    print(
        f"\n{args.arch} random weights, {args.threads} threads, batch 1, from JPEG bytes (quality 85), "
        f"best of {args.rounds} runs per case\n"
    )
    print(
        "| image | runtime | p50 ms/image | CPU ms/image | peak RSS MB | cosine to torch | model alone ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for width, height in SIZES:
        name = f"{width}x{height}"
        reference = np.asarray(torch_result[name]["vector"])
        for runtime in RUNTIMES:
            r = results[runtime][name]
            p50, cpu, rss, model_ms = r["p50_ms"], r["cpu_ms"], r["peak_rss_mb"], r["model_ms"]
            if runtime == "torch":
                cells = [f"{p50:.1f}", f"{cpu:.1f}", f"{rss:.0f}", "-", f"{model_ms:.1f}"]
            else:
                cosine = float(np.dot(reference, np.asarray(r["vector"])))
                cells = [
                    f"{p50:.1f} ({torch_result[name]['p50_ms'] / p50:.2f}x)",
                    f"{cpu:.1f} ({torch_result[name]['cpu_ms'] / cpu:.2f}x)",
                    f"{rss:.0f} ({rss / torch_result[name]['peak_rss_mb']:.2f}x)",
                    f"{cosine:.5f}",
                    f"{model_ms:.1f} ({torch_result[name]['model_ms'] / model_ms:.2f}x)",
                ]
            print(f"| {name} | {runtime} | " + " | ".join(cells) + " |")
    print(
        "\nratios in parentheses are against torch in this run: speed-ups for time (higher is better), "
        "fractions for RSS (lower is better); peak RSS is that of a process embedding only that image."
    )


def print_exif_table(seconds: float) -> None:
    """What reading EXIF costs beside the decode it follows (exif.py opens the bytes a second time)."""
    from PIL import Image

    from imagesearch.demo.photos import photo_jpeg
    from imagesearch.exif import EXIF_IFD, GPS_IFD, read_exif
    from imagesearch.imaging import decode_upload

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R5"
    exif.get_ifd(EXIF_IFD)[0x9003] = "2024:07:14 10:30:00"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    out = io.BytesIO()
    Image.open(io.BytesIO(photo_jpeg(4000, 3000))).save(out, "JPEG", quality=85, exif=exif.tobytes())
    data = out.getvalue()
    assert read_exif(data).latitude is not None
    raw = Image.open(io.BytesIO(data)).info["exif"]

    def parse_block() -> None:  # what a hand-over from the decode would leave to do
        block = Image.Exif()
        block.load(raw)
        block.get_ifd(EXIF_IFD), block.get_ifd(GPS_IFD)

    limits = {"max_bytes": 1 << 30, "max_pixels": 1 << 30}
    rows = [
        (
            "decode_upload, reduced (reduce_to=256: the thumbnail's side, as ingestion)",
            lambda: decode_upload(data, **limits, reduce_to=256),
        ),
        ("decode_upload, full size", lambda: decode_upload(data, **limits)),
        ("read_exif: a second open (headers only) and the parse", lambda: read_exif(data)),
        ("the parse of the block alone (a hand-over's cost)", parse_block),
        ("Image.open of the bytes, headers only", lambda: Image.open(io.BytesIO(data)).info),
    ]
    print(f"\n4000x3000 JPEG ({len(data) / 1e6:.1f} MB, quality 85, with EXIF and GPS), one thread\n")
    print("| step | p50 ms | CPU ms |")
    print("|---|---|---|")
    for name, call in rows:
        result = measure(call, seconds)
        print(f"| {name} | {result['p50_ms']:.3f} | {result['cpu_ms']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
