"""A package whose folder holds templates, as an installed plugin would (entry point -> module)."""
