"""Embedding speed and memory: onnxruntime fp32 and int8 against open_clip torch eager, same weights.

    .venv/bin/python bench/embedding.py [--arch ViT-B-32] [--threads 2] [--bundle DIR] [--seconds 3]

Exports the architecture with random weights to a temporary bundle (or to --keep DIR, with the torch
weights beside it as DIR-torch_weights.pt, for a later --bundle DIR), then measures each runtime in a
fresh subprocess so that import time and peak RSS are its own. Throughput is end to end from decoded PIL
images (resize, crop, normalise, model) and from strings (tokenise, model); the median latency of
repeated calls is used because this machine is noisy. Needs the export extra.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "torch_weights.pt"
RUNTIMES = ["torch", "onnx-fp32", "onnx-int8"]
BATCHES = (1, 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--bundle", type=Path, help="reuse a bundle exported by an earlier run (--keep)")
    parser.add_argument("--keep", type=Path, help="export into this directory and keep it")
    parser.add_argument("--worker", choices=[*RUNTIMES, "export", "text-query"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = run_worker(args)
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or args.keep or Path(tmp) / "bundle"
        if args.bundle is None:
            print(f"exporting {args.arch} (random weights, fp32 + int8) to {bundle} ...", file=sys.stderr)
            exported = subprocess_worker("export", bundle, args)
            print(f"  export took {exported['seconds']:.1f} s", file=sys.stderr)
        results = {}
        for runtime in [*RUNTIMES, "text-query"]:
            print(f"measuring {runtime} ...", file=sys.stderr)
            results[runtime] = subprocess_worker(runtime, bundle, args)
        print_table(results, bundle, args)
    return 0


def subprocess_worker(
    runtime: str, bundle: Path, args: argparse.Namespace, *, script: str = __file__, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Run one measurement of `script` (this one, or another bench's) in a fresh interpreter and return
    its JSON result."""
    command = [sys.executable, script, "--worker", runtime, "--bundle", str(bundle), *extra]
    command += ["--arch", args.arch, "--threads", str(args.threads), "--seconds", str(args.seconds)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{runtime} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one runtime in this process."""
    started = time.perf_counter()
    if args.worker == "export":
        return export(args, started)
    if args.worker == "torch":
        return measure_torch(args, started)
    return measure_onnx(args, started)


def export(args: argparse.Namespace, started: float) -> dict[str, Any]:
    import open_clip
    import torch

    from imagesearch.export import export_bundle

    model = open_clip.create_model(args.arch, pretrained=None)
    export_bundle(model, args.bundle, arch=args.arch, pretrained="none", int8=True)
    torch.save(model.state_dict(), args.bundle.parent / f"{args.bundle.name}-{WEIGHTS_FILE}")
    return {"seconds": time.perf_counter() - started}


def sample_images(count: int) -> list[Any]:
    """Photo-sized noise images, as decoded PIL images."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(count)]


def sample_texts(count: int) -> list[str]:
    return [f"a photo of a {('cat', 'dog')[i % 2]} number {i} on a sunny day" for i in range(count)]


def median_seconds(call: Callable[[], object], seconds: float) -> float:
    """Median wall time of `call`, after two warm-up calls, repeated for about `seconds`."""
    call()
    call()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def throughput(
    embed_images: Callable[[list[Any]], object], embed_texts: Callable[[list[str]], object], seconds: float
) -> dict[str, float]:
    images, texts = sample_images(max(BATCHES)), sample_texts(max(BATCHES))
    out: dict[str, float] = {}
    for batch in BATCHES:
        out[f"images_per_s_b{batch}"] = batch / median_seconds(partial(embed_images, images[:batch]), seconds)
        out[f"texts_per_s_b{batch}"] = batch / median_seconds(partial(embed_texts, texts[:batch]), seconds)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def measure_torch(args: argparse.Namespace, started: float) -> dict[str, Any]:
    import open_clip
    import torch

    imported = time.perf_counter()
    torch.set_num_threads(args.threads)
    model, _, transform = open_clip.create_model_and_transforms(args.arch, pretrained=None)
    weights = torch.load(args.bundle.parent / f"{args.bundle.name}-{WEIGHTS_FILE}", weights_only=True)
    model.load_state_dict(weights)
    model.eval()
    tokenizer = open_clip.get_tokenizer(args.arch)
    loaded = time.perf_counter()

    def embed_images(images: list[Any]) -> object:
        with torch.inference_mode():
            return model.encode_image(torch.stack([transform(img) for img in images]), normalize=True)

    def embed_texts(texts: list[str]) -> object:
        with torch.inference_mode():
            return model.encode_text(tokenizer(texts), normalize=True)

    result = throughput(embed_images, embed_texts, args.seconds)
    return {
        **result,
        "import_s": imported - started,
        "start_s": loaded - imported,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_onnx(args: argparse.Namespace, started: float) -> dict[str, Any]:
    from imagesearch.model.embedder import Embedder
    from imagesearch.model.manifest import Variant

    imported = time.perf_counter()
    variant: Variant = "fp32" if args.worker == "onnx-fp32" else "int8"
    embedder = Embedder(args.bundle, variant=variant, threads=args.threads)
    if args.worker == "text-query":
        # what a search function does: one query with the text tower only
        embedder.warm_up("text")
        loaded = time.perf_counter()
        embedder.embed_texts(["a photo of a cat"])
        return {
            "import_s": imported - started,
            "start_s": loaded - imported,
            "peak_rss_mb": peak_rss_mb(),
            **short_queries(embedder, args.seconds),
        }
    embedder.warm_up()
    loaded = time.perf_counter()
    files = embedder.manifest.files
    size_mb = (
        files[embedder.manifest.image.files[variant]].size + files[embedder.manifest.text.files[variant]].size
    ) / 1e6
    result = throughput(embedder.embed_images, embedder.embed_texts, args.seconds)
    return {
        **result,
        "import_s": imported - started,
        "start_s": loaded - imported,
        "peak_rss_mb": peak_rss_mb(),
        "files_mb": size_mb,
    }


SHORT_QUERIES = [
    "cat",
    "red car",
    "a dog on the beach",
    "sunset over the harbour in lisbon",
    "two children playing football in a park",
    "a bowl of ramen with an egg and spring onions",
    "snowy mountain peak at dawn with a lone hiker",
    "old black and white photo of my grandparents",
]


def short_queries(embedder: Any, seconds: float) -> dict[str, Any]:
    """One query at a time, as a search sends it: the query's own tokens (the bundle's unpadded text
    tower) against the same tower fed CLIP's 77 padded ids, interleaved query by query. Both include
    tokenising; the vectors are compared too."""
    import numpy as np

    from imagesearch.model.tokenizer import trimmed_length

    tokenizer, session, manifest = embedder._tokenizer, embedder._session("text"), embedder.manifest
    names = ([manifest.text.output], manifest.text.input)

    def padded(query: str) -> np.ndarray:
        return np.asarray(session.run(names[0], {names[1]: tokenizer([query])})[0])

    def unpadded(query: str) -> np.ndarray:
        return np.asarray(embedder.embed_texts([query]))

    tokens = [trimmed_length(tokenizer([q])) for q in SHORT_QUERIES]
    cosine = min(float(np.sum(padded(q) * unpadded(q))) for q in SHORT_QUERIES)
    # int8 quantises activations with scales taken from each input, padding included, so its padded and
    # unpadded vectors differ a little; what matters is how close each stays to the fp32 tower.
    reference: dict[str, float] = {}
    if "fp32" in manifest.variants and embedder.variant != "fp32":
        from imagesearch.model.embedder import Embedder

        fp32_session = Embedder(embedder.bundle_dir, variant="fp32", threads=1)._session("text")
        fp32 = np.asarray(fp32_session.run(names[0], {names[1]: tokenizer(SHORT_QUERIES)})[0])
        for name, call in (("padded", padded), ("unpadded", unpadded)):
            vectors = np.concatenate([call(q) for q in SHORT_QUERIES])
            reference[f"{name}_vs_fp32_min_cosine"] = float(np.sum(vectors * fp32, axis=1).min())
    times: dict[str, list[float]] = {"padded": [], "unpadded": []}
    deadline = time.perf_counter() + 2 * seconds
    while time.perf_counter() < deadline or len(times["padded"]) < 10 * len(SHORT_QUERIES):
        for query in SHORT_QUERIES:
            for name, call in (("padded", padded), ("unpadded", unpadded)):
                begin = time.perf_counter()
                call(query)
                times[name].append(time.perf_counter() - begin)
    return {
        "text_sequence": manifest.text_sequence,
        "query_tokens": tokens,
        "padded_p50_ms": statistics.median(times["padded"]) * 1000,
        "unpadded_p50_ms": statistics.median(times["unpadded"]) * 1000,
        "unpadded_min_cosine": cosine,
        **reference,
    }


def print_table(results: dict[str, dict[str, Any]], bundle: Path, args: argparse.Namespace) -> None:
    """A Markdown table, with each ONNX figure's ratio to torch measured in this run."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    torch_result = results["torch"]
    columns = [
        ("images/s b1", "images_per_s_b1"),
        ("images/s b16", "images_per_s_b16"),
        ("texts/s b1", "texts_per_s_b1"),
        ("texts/s b16", "texts_per_s_b16"),
        ("import s", "import_s"),
        ("start s", "start_s"),
        ("peak RSS MB", "peak_rss_mb"),
    ]
    print(f"\n{args.arch} random weights, {args.threads} threads, model id {manifest['model_id']}\n")
    print("| runtime | " + " | ".join(title for title, _ in columns) + " | files MB |")
    print("|---" * (len(columns) + 2) + "|")
    for runtime in RUNTIMES:
        cells = []
        for _, key in columns:
            value = results[runtime][key]
            if runtime == "torch":
                cells.append(f"{value:.2f}")
            else:
                cells.append(f"{value:.2f} ({value / torch_result[key]:.2f}x)")
        files = results[runtime].get("files_mb")
        size = f"{files:.0f}" if files is not None else "-"
        print(f"| {runtime} | " + " | ".join(cells) + f" | {size} |")
    query = results["text-query"]
    print(
        f"\nint8 text-only query process (search path): import {query['import_s']:.2f} s, "
        f"text session {query['start_s']:.2f} s, peak RSS {query['peak_rss_mb']:.0f} MB"
    )
    print(
        f"one short query at a time (int8, {min(query['query_tokens'])}-{max(query['query_tokens'])} tokens "
        f"with start and end, text tower {query['text_sequence']}): p50 {query['unpadded_p50_ms']:.2f} ms "
        f"on the query's own tokens, {query['padded_p50_ms']:.2f} ms padded to {manifest['context_length']} "
        f"({query['unpadded_p50_ms'] / query['padded_p50_ms']:.2f}x); vectors' min cosine "
        f"{query['unpadded_min_cosine']:.6f}"
    )
    if "unpadded_vs_fp32_min_cosine" in query:
        print(
            f"  against the fp32 tower (padded): int8 padded {query['padded_vs_fp32_min_cosine']:.6f}, "
            f"int8 unpadded {query['unpadded_vs_fp32_min_cosine']:.6f} (min cosine)"
        )
    sizes = ", ".join(f"{name} {entry['size'] / 1e6:.1f} MB" for name, entry in manifest["files"].items())
    print(f"bundle files: {sizes}")
    print("ratios in parentheses are against torch in this run (throughput: higher is better; times: lower).")


if __name__ == "__main__":
    sys.exit(main())
