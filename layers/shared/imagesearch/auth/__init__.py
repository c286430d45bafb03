"""Who is calling: tenants, API keys and JWTs."""
