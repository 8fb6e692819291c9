"""The workspace a plan builds: every write is confined to it, to a step's allow-list, and atomic.

A model's output names paths; none is trusted. A path is refused (``WorkspaceError``) when it is absolute,
contains ``..``, is not on the allow-list, or when any existing component of it is a symlink that resolves
outside the workspace. Writes go to a temporary file in the target folder, are fsynced and renamed over the
target, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from promptkit.errors import WorkspaceError
from promptkit.planning import is_glob, path_allowed, path_problem

__all__ = ["Workspace", "WrittenFile", "sha256_text", "STATE_DIRNAME"]

# Run state, reports and logs live here; plans may never write into it.
STATE_DIRNAME = ".promptkit"
# File-system limits (NAME_MAX, PATH_MAX on Linux and macOS), checked up front so a model's over-long name is
# refused like any other bad path rather than failing as an OSError. A write's temporary file is named
# ".<name>.<random>.tmp", so a name may use all but _TMP_AFFIXES of NAME_MAX.
_NAME_MAX = 255
_PATH_MAX = 4095
_TMP_AFFIXES = len(".") + len(".") + 8 + len(".tmp")
_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".nox", STATE_DIRNAME}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WrittenFile:
    """One file a step changed: its workspace-relative path and the sha256 of what is there now
    (``None`` when the step deleted it)."""

    path: str
    sha256: str | None


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Workspace:
    """A folder that steps write into, one checked path at a time."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace: {exc.strerror}", location=str(root)) from None
        self._real_root = os.path.realpath(self.root)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- checking ---------------------------------------------------------------------------------------

    def check(self, rel: str, allow: Sequence[str] | None = None, *, step: str | None = None) -> Path:
        """The absolute path for workspace-relative ``rel``, or ``WorkspaceError`` saying why it is refused.

        ``allow`` is the step's allow-list (exact paths and globs); None means any path inside the workspace.
        """
        shown = rel[:100] + "…" if isinstance(rel, str) and len(rel) > 200 else rel
        where = f"step {step!r}: {shown!r}" if step else repr(shown)
        problem = path_problem(rel)
        if problem:
            raise WorkspaceError(f"refused: {problem}", location=where)
        parts = PurePosixPath(rel).parts
        self._check_lengths(parts, where)
        if parts and parts[0] == STATE_DIRNAME:
            raise WorkspaceError(
                f"refused: {STATE_DIRNAME}/ holds the run state, not project files", location=where
            )
        if allow is not None and not path_allowed(rel, allow):
            shown = ", ".join(allow) or "(empty)"
            raise WorkspaceError(f"refused: not on the step's allow-list ({shown})", location=where)
        # Walk every existing component: a symlink anywhere on the way may not lead outside the workspace.
        current = str(self.root)
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                break  # the rest does not exist yet; it will be created as plain folders
            except OSError as exc:
                raise WorkspaceError(
                    f"refused: cannot inspect {current}: {exc.strerror}", location=where
                ) from None
            if stat.S_ISLNK(info.st_mode):
                target = os.path.realpath(current)
                if not _is_within(target, self._real_root):
                    raise WorkspaceError(
                        f"refused: {'/'.join(parts[: index + 1])} is a symlink to {target}, outside the workspace",
                        location=where,
                    )
            elif index < len(parts) - 1 and not stat.S_ISDIR(info.st_mode):
                raise WorkspaceError(
                    f"refused: {'/'.join(parts[: index + 1])} is a file, not a folder", location=where
                )
        final = os.path.realpath(os.path.join(self.root, *parts))
        if not _is_within(final, self._real_root):
            raise WorkspaceError(f"refused: resolves to {final}, outside the workspace", location=where)
        return Path(self.root, *parts)

    def _check_lengths(self, parts: tuple[str, ...], where: str) -> None:
        for part in parts:
            size = len(os.fsencode(part))
            if size > _NAME_MAX - _TMP_AFFIXES:
                raise WorkspaceError(
                    f"refused: the name {part[:40]!r}… is {size} bytes long; the limit is "
                    f"{_NAME_MAX - _TMP_AFFIXES} bytes per file or folder name",
                    location=where,
                )
        full = len(os.fsencode(os.path.join(self._real_root, *parts)))
        if full > _PATH_MAX:
            raise WorkspaceError(
                f"refused: the path is {full} bytes long in the workspace; the limit is {_PATH_MAX} bytes",
                location=where,
            )

    # -- reading ----------------------------------------------------------------------------------------

    def read(self, rel: str) -> str | None:
        """The text of ``rel``, or None when it does not exist (or is not a regular file)."""
        path = self.check(rel)
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except UnicodeDecodeError:
            raise WorkspaceError("not UTF-8 text", location=rel) from None
        except OSError as exc:
            raise WorkspaceError(f"cannot read: {exc.strerror}", location=rel) from None

    def hash(self, rel: str) -> str | None:
        text = self.read(rel)
        return None if text is None else sha256_text(text)

    def files(self) -> list[str]:
        """Every regular file in the workspace (workspace-relative, sorted), skipping state and VCS folders."""
        out: list[str] = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in names:
                full = os.path.join(folder, name)
                if os.path.isfile(full) and not os.path.islink(full):
                    out.append(Path(full).relative_to(self.root).as_posix())
        return sorted(out)

    def matching(self, patterns: Iterable[str]) -> list[str]:
        """Existing files named by ``patterns`` (exact paths and globs), in pattern order, without repeats."""
        found: list[str] = []
        listing: list[str] | None = None
        for pattern in patterns:
            if is_glob(pattern):
                if listing is None:
                    listing = self.files()
                found.extend(p for p in listing if path_allowed(p, [pattern]))
            elif path_problem(pattern) is None and (self.root / pattern).is_file():
                found.append(pattern)
        return list(dict.fromkeys(found))

    # -- writing ----------------------------------------------------------------------------------------

    def write(
        self, rel: str, content: str, allow: Sequence[str] | None = None, *, step: str | None = None
    ) -> WrittenFile:
        """Atomically replace (or create) ``rel`` with ``content``; returns its new hash."""
        path = self.check(rel, allow, step=step)
        self._make_parents(rel, path, allow, step)
        if os.path.islink(path):
            # Replace the link itself, never the file it points to.
            os.unlink(path)
        data = content.encode("utf-8")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise WorkspaceError(f"cannot write: {exc.strerror}", location=rel) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise WorkspaceError(f"cannot write: {exc.strerror}", location=rel) from None
        self._sync_dir(path.parent)
        return WrittenFile(rel, sha256_text(content))

    def delete(self, rel: str, allow: Sequence[str] | None = None, *, step: str | None = None) -> WrittenFile:
        path = self.check(rel, allow, step=step)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WorkspaceError(f"cannot delete: {exc.strerror}", location=rel) from None
        self._sync_dir(path.parent)
        return WrittenFile(rel, None)

    def _make_parents(self, rel: str, path: Path, allow: Sequence[str] | None, step: str | None) -> None:
        parent = path.parent
        try:
            if parent.is_dir():
                return
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create its folder: {exc.strerror}", location=rel) from None
        # A folder swapped for a symlink in between is caught by checking again.
        self.check(rel, allow, step=step)

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some filesystems cannot fsync a folder; the rename is still atomic
        finally:
            os.close(fd)
