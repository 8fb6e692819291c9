"""Finding templates: explicit paths, configured paths, installed packages, then the built-in library."""

from __future__ import annotations

import builtins
import difflib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from promptkit._package_data import package_data_dir
from promptkit._plugins import Registry, import_ref, split_ref
from promptkit.config import load_config
from promptkit.errors import PromptkitError, TemplateError, TemplateNotFound
from promptkit.prompts._lint import LintProblem, lint_files
from promptkit.prompts._template import Template

__all__ = [
    "TemplateRegistry",
    "ENTRY_POINT_GROUP",
    "TEMPLATE_FOLDERS",
    "builtin_template_dir",
    "default_registry",
    "load_template",
    "list_templates",
    "iter_template_files",
]

ENTRY_POINT_GROUP = "promptkit.templates"
_SUFFIXES = (".yaml", ".yml")
_BUILTIN = "promptkit"
# A top-level `name:` line, read without parsing the whole file so lookups stay cheap.
_NAME_LINE = re.compile(r"^name:\s*['\"]?([A-Za-z0-9_-]+)['\"]?\s*(?:#.*)?$", re.MULTILINE)


def builtin_template_dir() -> Path:
    """The built-in library, shipped in the package as ``promptkit/templates``."""
    return package_data_dir("templates", TemplateNotFound)


def _load_folder(ref: str, what: str, where: str) -> Any:
    """An entry point's value: a path, or a module (its folder) or an attribute holding a path."""
    if split_ref(ref) is None:
        return Path(ref.strip()).expanduser()
    try:
        return import_ref(ref, what=what, location=where, error=TemplateError, module_ok=True)
    except TemplateError:
        if Path(ref).is_dir():  # a bare folder name looks like a module name
            return Path(ref)
        raise


# Folders of templates by name: third-party ones through the entry points, the built-in library last.
TEMPLATE_FOLDERS: Registry[Any] = Registry(
    "template folder",
    group=ENTRY_POINT_GROUP,
    builtins={_BUILTIN: "promptkit.prompts._registry:builtin_template_dir"},
    error=TemplateError,
    load=_load_folder,
)


def _folder_of(name: str, obj: Any) -> Path:
    if isinstance(obj, (str, os.PathLike)):
        return Path(obj)
    module_file = getattr(obj, "__file__", None)
    if module_file:
        return Path(module_file).parent
    if callable(obj):  # the built-in library: found (or reported missing) when the search path is built
        return Path(obj())
    raise TemplateError(
        f"{type(obj).__name__} is neither a path nor a module", location=f"entry point {name!r}"
    )


def iter_template_files(root: Path) -> Iterator[Path]:
    """``*.yaml``/``*.yml`` under ``root`` (or ``root`` itself), sorted, skipping hidden folders."""
    if root.is_file():
        if root.suffix in _SUFFIXES:
            yield root
        return
    if not root.is_dir():
        return
    found = [
        p
        for p in root.rglob("*")
        if p.suffix in _SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    yield from sorted(found)


class TemplateRegistry:
    """Templates by name from a search path; earlier folders shadow later ones.

    Order: ``paths``, then the configured ``template_paths`` (``PROMPTKIT_TEMPLATE_PATH`` first), then the
    folders of ``TEMPLATE_FOLDERS`` (``promptkit.templates`` entry points and run-time registrations, by
    name), then the built-in library. Files load lazily and are cached until their modification time changes.
    """

    def __init__(
        self, paths: Iterable[str | Path] | None = None, *, builtin: bool = True, entry_points: bool = True
    ) -> None:
        self._explicit = [Path(p) for p in (paths or [])]
        self._builtin = builtin
        self._entry_points = entry_points
        self._roots: list[Path] | None = None
        # Problems met while resolving the search path (a broken entry point); lint reports them.
        self.errors: list[LintProblem] = []
        self._cache: dict[Path, tuple[int, int, Template]] = {}
        self._names: dict[Path, tuple[int, int, str | None]] = {}
        self._lock = threading.Lock()

    # ---- search path -------------------------------------------------------------------------------

    @property
    def search_path(self) -> list[Path]:
        if self._roots is None:
            self.errors = []
            roots = list(self._explicit)
            roots += load_config().template_paths
            if self._entry_points:
                roots += self._plugin_paths()
            if self._builtin:
                roots.append(_folder_of(_BUILTIN, TEMPLATE_FOLDERS.get(_BUILTIN)))
            seen: set[Path] = set()
            unique = []
            for root in roots:
                key = root.resolve()
                if key not in seen:
                    seen.add(key)
                    unique.append(root)
            self._roots = unique
        return list(self._roots)

    def refresh(self) -> None:
        """Forget the search path (re-read config, environment and installed plugins next time); cached
        files stay."""
        self._roots = None
        TEMPLATE_FOLDERS.forget()

    def _plugin_paths(self) -> list[Path]:
        out: list[Path] = []
        for name in TEMPLATE_FOLDERS.names():
            if name == _BUILTIN and TEMPLATE_FOLDERS.source(name) == "built-in":
                continue
            try:
                out.append(_folder_of(name, TEMPLATE_FOLDERS.get(name)))
            except PromptkitError as exc:  # a broken plugin must not hide the other templates
                self.errors.append(LintProblem(f"entry point {name}", None, exc.message))
        return out

    def files(self) -> list[Path]:
        """Every template file on the search path, in search order; none at all is ``TemplateNotFound``."""
        roots = self.search_path
        found = [f for root in roots for f in iter_template_files(root)]
        if not found:
            # An empty library is a broken setup: say where we looked instead of listing nothing.
            searched = os.pathsep.join(str(r) for r in roots) or "(empty search path)"
            raise TemplateNotFound(f"no templates on the search path (searched {searched})")
        return found

    # ---- loading -----------------------------------------------------------------------------------

    def load_file(self, path: Path) -> Template:
        stat = path.stat()
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2]
        template = Template.from_file(path)
        with self._lock:
            self._cache[path] = (stat.st_mtime_ns, stat.st_size, template)
        return template

    def _peek_name(self, path: Path) -> str | None:
        stat = path.stat()
        cached = self._names.get(path)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            name = None
        else:
            match = _NAME_LINE.search(text)
            name = match.group(1) if match else None
        with self._lock:
            self._names[path] = (stat.st_mtime_ns, stat.st_size, name)
        return name

    def get(self, name: str) -> Template:
        """The first template called ``name`` on the search path."""
        files = self.files()
        for path in files:
            if self._peek_name(path) == name:
                template = self.load_file(path)
                if template.name == name:
                    return template
        # Files whose name the quick scan could not read: load them to be sure.
        for path in files:
            if self._peek_name(path) is None:
                try:
                    template = self.load_file(path)
                except PromptkitError:
                    continue
                if template.name == name:
                    return template
        known = sorted({n for n in (self._peek_name(p) for p in files) if n})
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        searched = os.pathsep.join(str(r) for r in self.search_path) or "(empty search path)"
        raise TemplateNotFound(f"no template named {name!r}{hint} (searched {searched})")

    def names(self) -> list[str]:
        return [t.name for t in self.list()]

    def list(self, tag: str | None = None) -> list[Template]:
        """All templates (shadowed ones left out), sorted by name; ``tag`` as ``value`` or ``kind:value``."""
        seen: dict[str, Template] = {}
        for path in self.files():
            template = self.load_file(path)
            seen.setdefault(template.name, template)
        templates = sorted(seen.values(), key=lambda t: t.name)
        if tag is None:
            return templates
        return [t for t in templates if _has_tag(t, tag)]

    def path_of(self, template: Template) -> str | None:
        return template.source

    # ---- lint --------------------------------------------------------------------------------------

    def lint(self, paths: Iterable[str | Path] | None = None) -> builtins.list[LintProblem]:
        """Every problem in the given files/folders (default: the whole search path), not just the first.

        Duplicate names are problems among explicitly given paths; on the search path, a name repeated in
        another root is intended shadowing, so only repeats within one root are reported.
        """
        if paths is not None:
            groups = [[f for p in paths for f in _expand(Path(p))]]
            problems: builtins.list[LintProblem] = []
        else:
            groups = [list(iter_template_files(root)) for root in self.search_path]
            problems = list(self.errors)
        for files in groups:
            problems += lint_files(files, load=self.load_file)
        return problems

    def lint_count(self, paths: Iterable[str | Path] | None = None) -> int:
        """How many template files ``lint`` looks at."""
        if paths is not None:
            return sum(1 for p in paths for _ in _expand(Path(p)))
        return len(self.files())


def _expand(path: Path) -> list[Path]:
    if not path.exists():
        return [path]  # lint reports it as unreadable
    return list(iter_template_files(path))


def _has_tag(template: Template, tag: str) -> bool:
    kind, sep, value = tag.partition(":")
    if sep:
        return value in template.tags.get(kind, ())
    return tag in template.all_tags


_DEFAULT: TemplateRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry(*, refresh: bool = False) -> TemplateRegistry:
    """The process-wide registry over the configured search path (``refresh`` re-reads config)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = TemplateRegistry()
        elif refresh:
            _DEFAULT.refresh()
        return _DEFAULT


def load_template(name: str) -> Template:
    """The template called ``name`` on the search path (``TemplateNotFound``, with close names, if none)."""
    return default_registry().get(name)


def list_templates(tag: str | None = None) -> list[Template]:
    """Every template on the search path, or those carrying ``tag``."""
    return default_registry().list(tag)
