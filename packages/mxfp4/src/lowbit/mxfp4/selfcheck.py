"""Self-check (placeholder, filled below)."""
