"""`imagesearch model ...`: export open_clip models as ONNX bundles, train the demo model (export extra)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from imagesearch.cli.target import add_target_arguments, target_runtime
from imagesearch.logs import logger


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `model` command group."""
    parser = subparsers.add_parser(
        "model", help="model bundles: export open_clip to ONNX, train the demo model"
    )
    commands = parser.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    export = commands.add_parser(
        "export",
        help="export an open_clip model (image and text towers, tokenizer, manifest) to a bundle directory",
        description="With a pretrained tag, open_clip downloads the weights (needs internet); "
        "--pretrained none exports random weights, a file path loads a checkpoint.",
    )
    export.add_argument("--arch", required=True, help="open_clip architecture, e.g. ViT-B-32")
    export.add_argument(
        "--pretrained", required=True, help="pretrained tag (laion2b_s34b_b79k), checkpoint file, or none"
    )
    export.add_argument("--out", required=True, type=Path, help="bundle directory (must be empty or new)")
    export.add_argument("--int8", action="store_true", help="also write int8 (dynamically quantised) towers")
    export.add_argument(
        "--model-config",
        type=Path,
        help="open_clip model config JSON: registers --arch as a custom architecture",
    )
    export.set_defaults(func=run_export)

    train_demo = commands.add_parser(
        "train-demo",
        help="train the small demo CLIP on generated coloured shapes and export it as a bundle (offline)",
        description="Deterministic by seed: the defaults reproduce the committed demo bundle "
        "(layers/shared/imagesearch/model/demo_bundle; about 10 minutes on 2 cores). See docs/demo-model.md.",
    )
    train_demo.add_argument("--out", required=True, type=Path, help="bundle directory (must be empty or new)")
    train_demo.add_argument("--steps", type=int, default=2000, help="steps of 64 pictures (default 2000)")
    train_demo.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    train_demo.add_argument("--keep-fp32", action="store_true", help="keep the fp32 towers too")
    train_demo.set_defaults(func=run_train_demo)

    listing = commands.add_parser("list", help="the models of a deployment: state, vectors, coverage")
    add_target_arguments(listing)
    listing.set_defaults(func=run_list)
    status = commands.add_parser(
        "status",
        help="back-fill progress (database only): vectors, missing, coverage, whether it can be activated",
        description="Exits 1 while the named model lacks vectors of some ready images (a pipeline can wait "
        "on it: until imagesearch model status ID; do sleep 30; done), 2 when there is no such model.",
    )
    status.add_argument("model_id", nargs="?", metavar="MODEL_ID", help="only this model")
    add_target_arguments(status)
    status.set_defaults(func=run_status)
    activate = commands.add_parser(
        "activate", help="switch search to a model once it covers every image (see imagesearch reindex)"
    )
    activate.add_argument("model_id", metavar="MODEL_ID")
    activate.add_argument("--force", action="store_true", help="even if some images lack its vectors")
    add_target_arguments(activate)
    activate.set_defaults(func=run_activate)


def run_list(args: argparse.Namespace) -> int:
    """Run `model list`."""
    from imagesearch.db import embeddings
    from imagesearch.tables import format_table

    with target_runtime(args) as runtime, runtime.database.connection() as conn:
        rows = embeddings.coverage(conn)
    table = [
        [model_id, state, str(dim), str(vectors), f"{vectors / ready:.0%}" if ready else "-"]
        for model_id, state, dim, vectors, ready in rows
    ]
    print(format_table(["model", "state", "dim", "vectors", "coverage"], table) if table else "no models yet")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Run `model status`: 1 while the named model is incomplete."""
    from imagesearch.db import embeddings
    from imagesearch.errors import ImageSearchError
    from imagesearch.tables import format_table

    with target_runtime(args) as runtime, runtime.database.connection() as conn:
        rows = embeddings.model_coverage(conn, args.model_id)
    if not rows:
        if args.model_id:
            raise ImageSearchError(
                f"no model {args.model_id!r}: `imagesearch reindex --model URI` registers it"
            )
        print("no models yet")
        return 0
    table = [
        [
            row.model_id,
            row.state,
            str(row.vectors),
            str(row.ready),
            str(row.missing),
            f"{math.floor(row.percent * 10) / 10:.1f}%",  # never 100.0% while one is missing
            "active" if row.state == "active" else "yes" if row.complete else "no",
        ]
        for row in rows
    ]
    print(format_table(["model", "state", "vectors", "ready", "missing", "coverage", "can activate"], table))
    if not args.model_id:
        return 0
    row = rows[0]
    if not row.complete:
        again = f"imagesearch reindex --model {row.bundle_uri or 'URI'} --queue-url URL"
        print(
            f"{row.missing} ready images lack a vector of {row.model_id}: the embed function is still at it, "
            f"or they were missed; once the queue is empty, `{again}` sends only those"
        )
        return 1
    if row.state != "active":
        print(f"complete: switch search to it with: imagesearch model activate {row.model_id}")
    return 0


def run_activate(args: argparse.Namespace) -> int:
    """Run `model activate`."""
    from imagesearch.ingest.reindex import activate

    with target_runtime(args) as runtime:
        activate(runtime.database, args.model_id, force=args.force)
    print(f"search now answers with {args.model_id}; the previous model is retired (its vectors are kept)")
    return 0


def _without_export_extra(command: str, error: ImportError) -> int:
    """The exit status (2) and message of a command that needs torch and open_clip where they are missing."""
    print(
        f"imagesearch: error: {command} needs the export extra (pip install -e '.[export]'): {error}",
        file=sys.stderr,
    )
    return 2


def run_export(args: argparse.Namespace) -> int:
    """Run `model export`; torch and open_clip are imported only here."""
    started = time.perf_counter()
    try:
        from imagesearch.export import ExportError, export_pretrained
    except ImportError as e:
        return _without_export_extra("model export", e)
    logger.info("imported torch and open_clip", extra={"seconds": round(time.perf_counter() - started, 2)})
    try:
        manifest = export_pretrained(
            args.arch, args.pretrained, args.out, int8=args.int8, model_config=args.model_config
        )
    except ExportError as e:
        print(f"imagesearch: error: {e}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{name} {entry.size / 1e6:.1f} MB" for name, entry in manifest.files.items())
    print(f"exported {manifest.model_id} to {args.out} in {time.perf_counter() - started:.1f} s: {sizes}")
    return 0


def run_train_demo(args: argparse.Namespace) -> int:
    """Run `model train-demo`: train with a progress bar, export, then report quality on held-out pictures."""
    started = time.perf_counter()
    try:
        from imagesearch.demo.train import TrainConfig, train_demo
        from imagesearch.export import ExportError
    except ImportError as e:
        return _without_export_extra("train-demo", e)
    from tqdm import tqdm

    from imagesearch.demo.quality import evaluate
    from imagesearch.model.embedder import Embedder

    if args.steps < 1:
        print("imagesearch: error: --steps must be at least 1", file=sys.stderr)
        return 2
    try:
        config = TrainConfig(steps=args.steps, seed=args.seed)
        with tqdm(total=config.steps, unit="step", desc="train-demo") as bar:

            def on_step(_step: int, loss: float) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

            manifest, result = train_demo(args.out, config, keep_fp32=args.keep_fp32, on_step=on_step)
    except ExportError as e:
        print(f"imagesearch: error: {e}", file=sys.stderr)
        return 2
    report = evaluate(Embedder(args.out))
    sizes = ", ".join(f"{name} {entry.size / 1e6:.1f} MB" for name, entry in manifest.files.items())
    print(
        f"trained {config.steps} steps in {result.seconds:.0f} s (final loss {result.final_loss:.4f}); "
        f"exported {manifest.model_id} to {args.out} in {time.perf_counter() - started:.0f} s total: {sizes}"
    )
    print(report.summary())
    return 0
