"""Images: records in PostgreSQL, bytes in object storage, and the rules for what users send."""
