"""Versioned, validated datasets built from catalog queries."""
