"""The read-only search path: hybrid (vector + keyword) queries, query by example, shadow comparisons."""
