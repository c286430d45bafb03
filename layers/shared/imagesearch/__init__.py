"""imagesearch: image search API as serverless functions (shared package)."""

import os

__version__ = "0.1.0"

# numpy's OpenBLAS starts a thread per core for each matrix product, and the search path's are small (the
# re-ranking of diversity and collapse): one thread is faster under load, and idle BLAS threads spin on the
# CPU after every request (bench/search_features.py). Set before numpy loads, unless the caller chose.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
