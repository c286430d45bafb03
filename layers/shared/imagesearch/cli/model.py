"""`imagesearch model ...`: export an open_clip model as an ONNX bundle (needs the `export` extra)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from imagesearch.logs import logger


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `model` command group."""
    parser = subparsers.add_parser("model", help="model bundles: export open_clip to ONNX")
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


def run_export(args: argparse.Namespace) -> int:
    """Run `model export`; torch and open_clip are imported only here."""
    started = time.perf_counter()
    try:
        from imagesearch.export import ExportError, export_pretrained
    except ImportError as e:
        print(
            f"imagesearch: error: model export needs the export extra (pip install -e '.[export]'): {e}",
            file=sys.stderr,
        )
        return 2
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
