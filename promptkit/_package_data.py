"""The data shipped inside the package (``promptkit/templates``, ``promptkit/playbooks``), found through
importlib.resources so that an installed wheel reads the same files as a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from promptkit.errors import PromptkitError

__all__ = ["package_data_dir"]


def package_data_dir(name: str, error: type[PromptkitError]) -> Path:
    """The folder ``promptkit/<name>``; ``error`` names where it was looked for when it is missing.

    A build without its package data must fail loudly, not pass for a library with nothing in it.
    """
    folder = resources.files("promptkit").joinpath(name)
    # The loaders glob, stat and cache by mtime, so the data must be plain files (as pip installs them).
    if not isinstance(folder, Path) or not folder.is_dir():
        raise error(
            f"promptkit's built-in {name} are missing: {folder} is not a folder "
            "(was promptkit built without its package data?)"
        )
    return folder
