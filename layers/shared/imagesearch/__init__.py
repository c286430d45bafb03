"""imagesearch: image search API as serverless functions (shared package)."""

__version__ = "0.1.0"
