"""Pure computations on decoded images that enrich their records (no database, no model)."""
