"""open_clip -> ONNX model bundles. Needs the `export` extra (torch, open_clip); never imported at runtime."""

from imagesearch.export.bundle import export_bundle, export_pretrained
from imagesearch.export.config import ExportError

__all__ = ["ExportError", "export_bundle", "export_pretrained"]
