"""Plugins: the one way promptkit finds things by name (backends, scorers, verifiers, template folders).

A :class:`Registry` holds one kind of plugin and looks a name up in three places, first match wins:

1. objects registered at run time (``register()``, or a decorator built on it such as ``@scorer``);
2. entry points of installed distributions in the registry's group, e.g. ``[project.entry-points.
   "promptkit.backends"] mine = "mypkg.backend:MyBackend"`` (read once and cached; ``reload()`` reads again);
3. the built-ins, given as ``"package.module:attr"`` strings that are imported on first use, so that
   naming a plugin never imports a heavy library.

``import_ref`` is the single ``package.module:attr`` importer; its errors name the reference and where it
was written. This module sits at the bottom layer: it imports only the standard library and ``errors``.
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from promptkit.errors import PromptkitError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["Registry", "import_ref", "split_ref", "did_you_mean"]

T = TypeVar("T")

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_REF = re.compile(rf"^\s*({_DOTTED})\s*(?::\s*({_DOTTED})\s*)?$")
_EXTRAS = re.compile(r"\s*\[[^\]]*\]\s*$")  # an entry point's "[extra1, extra2]" suffix


def split_ref(ref: object) -> tuple[str, str | None] | None:
    """``(module, attr)`` for ``"package.module:attr"`` (``attr`` is None for a bare module), else None."""
    if not isinstance(ref, str):
        return None
    match = _REF.match(ref)
    return (match.group(1), match.group(2)) if match else None


def import_ref(
    ref: str,
    *,
    what: str = "object",
    location: str | None = None,
    error: type[PromptkitError] = PromptkitError,
    unavailable: type[PromptkitError] | None = None,
    module_ok: bool = False,
) -> Any:
    """The object ``ref`` (``"package.module:attr"``, ``attr`` may be dotted) names.

    Every failure is one ``error`` naming ``what``, the reference and ``location`` (where it was written);
    a missing module or dependency raises ``unavailable`` instead when given. ``module_ok`` accepts a bare
    module name and returns the module.
    """
    parts = split_ref(ref)
    if parts is None or (parts[1] is None and not module_ok):
        raise error(f"{what} must be 'package.module:attr', got {ref!r}", location=location)
    module_name, attr = parts
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise (unavailable or error)(
            f"cannot import {what} from {ref!r}: {type(exc).__name__}: {exc}", location=location
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any failure while importing plugin or user code is this ref's
        raise error(
            f"cannot import {what} from {ref!r}: {type(exc).__name__}: {exc}", location=location
        ) from exc
    owner = module_name
    for part in attr.split(".") if attr else ():
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise error(
                f"cannot import {what} from {ref!r}: {owner!r} has no attribute {part!r}", location=location
            ) from None
        owner = f"{owner}.{part}"
    return obj


def did_you_mean(name: object, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """Plugins of one ``kind`` by name: registered at run time, then ``group``'s entry points, then built-ins.

    ``builtins`` maps names to ``"package.module:attr"`` strings, imported when first asked for.
    ``error`` is the error class of this kind (an unknown name, a bad reference); ``unavailable`` the one
    for a plugin whose module or dependency is not installed. ``normalize`` maps every name before use
    (``"Python_Compile"`` -> ``"python-compile"``). ``load(ref, what, location)`` replaces ``import_ref``
    for kinds whose entry points hold something else than an object reference (a folder path).
    """

    def __init__(
        self,
        kind: str,
        *,
        group: str | None = None,
        builtins: Mapping[str, str] | None = None,
        error: type[PromptkitError] = PromptkitError,
        unavailable: type[PromptkitError] | None = None,
        normalize: Callable[[str], str] | None = None,
        load: Callable[[str, str, str], Any] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.error = error
        self.unavailable = unavailable
        self._normalize = normalize or (lambda name: name)
        self._load = load
        self._builtins = {self._normalize(k): v for k, v in (builtins or {}).items()}
        self._registered: dict[str, T] = {}
        self._loaded: dict[str, T] = {}  # entry points and built-ins imported so far
        # Scanning installed distributions costs ~10 ms, so a group is read once; reload() reads it again.
        self._entry_points: dict[str, EntryPoint] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"

    # ---- sources -------------------------------------------------------------------------------------

    def register(self, name: str, obj: T) -> T:
        """Make ``name`` mean ``obj`` in this process, before any entry point or built-in of that name."""
        if not isinstance(name, str) or not name.strip():
            raise self.error(f"a {self.kind} name must be a non-empty string, got {name!r}")
        with self._lock:
            self._registered[self._normalize(name)] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Forget a run-time registration (entry points and built-ins of that name show through again)."""
        with self._lock:
            self._registered.pop(self._normalize(name), None)

    def registered(self) -> dict[str, T]:
        """What was registered at run time in this process (a copy)."""
        with self._lock:
            return dict(self._registered)

    @property
    def builtins(self) -> dict[str, str]:
        """The built-in names and the references they load."""
        return dict(self._builtins)

    def entry_points(self) -> dict[str, EntryPoint]:
        """The installed entry points of this registry's group, by (normalized) name; the first one wins."""
        if self.group is None:
            return {}
        with self._lock:
            if self._entry_points is None:
                from importlib import metadata

                try:
                    found = list(metadata.entry_points(group=self.group))
                except Exception:  # noqa: BLE001 - a broken distribution must not hide the built-ins
                    found = []
                points: dict[str, EntryPoint] = {}
                for point in found:
                    points.setdefault(self._normalize(point.name), point)
                self._entry_points = points
            return dict(self._entry_points)

    def reload(self) -> list[str]:
        """Read the entry points again (after installing a plugin) and forget what was imported; the names."""
        self.forget()
        return self.names()

    def forget(self) -> None:
        """Like ``reload()``, but the entry points are read again only when next needed."""
        with self._lock:
            self._entry_points = None
            self._loaded.clear()

    @contextmanager
    def isolated(self) -> Iterator[Registry[T]]:
        """Registrations made inside the block are undone at its end, and entry points are read afresh
        inside it and after it (for tests that register a plugin or fake an installed one)."""
        with self._lock:
            saved = dict(self._registered)
        self.forget()
        try:
            yield self
        finally:
            with self._lock:
                self._registered = saved
            self.forget()

    # ---- lookup --------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name that resolves: registered, installed and built-in, sorted."""
        with self._lock:
            local = set(self._registered) | set(self._builtins)
        return sorted(local | set(self.entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._normalize(name) in set(self.names())

    def source(self, name: str) -> str | None:
        """Where ``name`` comes from: ``"registered"``, ``"entry point"``, ``"built-in"``, or None."""
        key = self._normalize(name)
        with self._lock:
            if key in self._registered:
                return "registered"
        if key in self.entry_points():
            return "entry point"
        return "built-in" if key in self._builtins else None

    def find(self, name: object) -> T | None:
        """The plugin called ``name``, imported if need be; None when no source has it. A plugin that
        cannot be imported raises (``unavailable`` or ``error``) naming its reference and source."""
        if not isinstance(name, str):
            return None
        key = self._normalize(name)
        with self._lock:
            if key in self._registered:
                return self._registered[key]
            if key in self._loaded:
                return self._loaded[key]
        point = self.entry_points().get(key)
        if point is not None:
            where = f"entry point {point.name!r} in {self.group!r}"
            dist = getattr(point, "dist", None)
            if dist is not None and getattr(dist, "name", None):
                where += f" of {dist.name}"
            obj = self._import(_EXTRAS.sub("", point.value), key, where)
        elif key in self._builtins:
            obj = self._import(self._builtins[key], key, f"built-in {self.kind} {key!r}")
        else:
            return None
        with self._lock:
            self._loaded[key] = obj
        return obj  # type: ignore[no-any-return]

    def get(self, name: object, *, location: str | None = None) -> T:
        """The plugin called ``name``; an unknown name is ``error`` listing the known ones (and the closest)."""
        found = self.find(name)
        if found is None:
            raise self.error(self.unknown_message(name), location=location)
        return found

    def unknown_message(self, name: object) -> str:
        known = self.names()
        hint = did_you_mean(self._normalize(name) if isinstance(name, str) else name, known)
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(known) or 'none'}"

    def _import(self, ref: str, name: str, where: str) -> Any:
        what = f"{self.kind} {name!r}"
        if self._load is not None:
            return self._load(ref, what, where)
        return import_ref(ref, what=what, location=where, error=self.error, unavailable=self.unavailable)
