"""Bench (placeholder)."""
