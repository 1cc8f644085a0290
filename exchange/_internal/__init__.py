"""Internal helpers. Unstable: nothing here is public API and it may change without notice."""
