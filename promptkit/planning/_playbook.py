"""Playbooks: reusable decompositions, expanded deterministically from a spec into plan steps.

A playbook is YAML (see promptkit/playbooks/README.md)::

    name: cli_tool
    description: ...
    applies_to: {stack: python-cli}        # or {task: fix-failing-test}
    summary: "Build {{ name }} ..."        # Jinja, like every string below
    steps:
      - id: "tests-{{ entity.slug }}"
        for_each: entities                 # or features; the item is `entity` / `feature` (or `as:`)
        when: "entity.unique_fields"       # optional Jinja expression
        kind: render
        title: ...
        render_files: {"tests/test_{{ entity.plural }}.py": "..."}
        depends_on: ["cli", "model-*"]     # globs match ids of the steps expanded before
        verifiers: [{pytest: {tests: ["tests/test_{{ entity.plural }}.py"]}}]

Strings render in a sandboxed Jinja2 environment with StrictUndefined; a string that is exactly one
``{{ expression }}`` keeps the expression's type (a list stays a list).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from promptkit._package_data import package_data_dir
from promptkit.config import load_config
from promptkit.errors import PlanError
from promptkit.planning._context import spec_context
from promptkit.planning._naming import kebab_case, pluralize, snake_case
from promptkit.planning._paths import glob_to_regex, is_glob
from promptkit.planning._plan import Step
from promptkit.planning._spec import AppSpec, TaskSpec
from promptkit.prompts import Document, raise_validation, read_document

__all__ = [
    "PLAYBOOK_PATH_ENV",
    "StepTemplate",
    "Playbook",
    "load_playbook",
    "find_playbook",
    "list_playbooks",
    "builtin_playbook_dir",
    "playbook_for",
]

PLAYBOOK_PATH_ENV = "PROMPTKIT_PLAYBOOK_PATH"
_WHOLE_EXPRESSION = re.compile(r"\A\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*\Z", re.DOTALL)
_BLANKS = re.compile(r"\n{4,}")


class StepTemplate(BaseModel):
    """One step of a playbook before expansion; every string may use Jinja."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    for_each: Literal["entities", "features"] | None = None
    as_: str | None = Field(default=None, alias="as")
    when: str | None = None
    # skeleton steps are what the hybrid planner keeps; feature steps it plans with a model instead.
    role: Literal["skeleton", "feature"] | None = None
    kind: str
    title: str
    description: str = ""
    acceptance: list[str] | str = Field(default_factory=list)
    template: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    render_files: dict[str, str] = Field(default_factory=dict)
    files: list[str] | str = Field(default_factory=list)
    reads: list[str] | str = Field(default_factory=list)
    depends_on: list[str] | str = Field(default_factory=list)
    verifiers: list[Any] | str = Field(default_factory=list)
    route: dict[str, Any] = Field(default_factory=dict)
    max_attempts: int | None = Field(default=None, ge=1)

    @property
    def effective_role(self) -> str:
        return self.role or ("feature" if self.for_each == "features" else "skeleton")

    @property
    def item_name(self) -> str | None:
        if self.for_each is None:
            return None
        return self.as_ or {"entities": "entity", "features": "feature"}[self.for_each]


class Playbook(BaseModel):
    """A named decomposition for one stack (``applies_to.stack``) or task kind (``applies_to.task``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    applies_to: dict[Literal["stack", "task"], str] = Field(default_factory=dict)
    summary: str = ""
    # Extra names for the templates, rendered in order (each may use the ones before it).
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepTemplate] = Field(min_length=1)
    # Where it was loaded from, and the lines of steps[i] and steps[i].<field>, for errors.
    _source: str = PrivateAttr(default="")
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        return self._source

    def applies(self, spec: AppSpec | TaskSpec) -> bool:
        if isinstance(spec, TaskSpec):
            return self.applies_to.get("task") == spec.task
        return self.applies_to.get("stack") == spec.stack

    def where(self, index: int, field: str | None = None) -> str:
        line = self._lines.get(f"{index}.{field}") or self._lines.get(str(index))
        loc = f"{self.source or self.name}:{line}" if line else (self.source or f"playbook {self.name!r}")
        return f"{loc}: steps[{index}]" + (f".{field}" if field else "")

    def expand(
        self, spec: AppSpec | TaskSpec, *, roles: tuple[str, ...] = ("skeleton", "feature")
    ) -> list[Step]:
        """The steps for ``spec``, in playbook order (``for_each`` items in spec order)."""
        context = self.context(spec)
        steps: list[Step] = []
        for index, template in enumerate(self.steps):
            if template.effective_role not in roles:
                continue
            for local in self._items(template, context, index):
                steps.append(self._expand_one(template, local, index, [s.id for s in steps]))
        return steps

    def context(self, spec: AppSpec | TaskSpec) -> dict[str, Any]:
        """The names templates see: :func:`spec_context` plus this playbook's ``vars``."""
        context = spec_context(spec)
        for key, value in self.vars.items():
            context[key] = _render_tree(value, context, f"{self.source or self.name}: vars.{key}")
        return context

    def render_summary(self, spec: AppSpec | TaskSpec) -> str:
        if not self.summary:
            return ""
        value = _render(self.summary, self.context(spec), f"{self.source or self.name}: summary")
        return " ".join(str(value).split())

    def _items(self, template: StepTemplate, context: dict[str, Any], index: int) -> Iterator[dict[str, Any]]:
        items: list[Any] = context[template.for_each] if template.for_each else [None]
        for position, item in enumerate(items):
            local = dict(context)
            if template.item_name:
                local[template.item_name] = item
                local["index"] = position
            if template.when is not None:
                verdict = _render("{{ " + template.when + " }}", local, self.where(index, "when"))
                if not verdict:
                    continue
            yield local

    def _expand_one(
        self, template: StepTemplate, local: dict[str, Any], index: int, earlier: list[str]
    ) -> Step:
        def field(name: str) -> Any:
            return _render_tree(getattr(template, name), local, self.where(index, name))

        render_files: dict[str, str] = {}
        for raw_path, raw_content in template.render_files.items():
            where = self.where(index, "render_files")
            path = str(_render(raw_path, local, where)).strip()
            render_files[path] = _tidy(path, str(_render(raw_content, local, f"{where}[{path!r}]")))
        files = _string_list(field("files"), self.where(index, "files")) or list(render_files)
        depends: list[str] = []
        for dep in _string_list(field("depends_on"), self.where(index, "depends_on")):
            if is_glob(dep):
                depends += [i for i in earlier if glob_to_regex(dep).match(i) and i not in depends]
            elif dep not in depends:
                depends.append(dep)
        data: dict[str, Any] = {
            "id": str(field("id")).strip(),
            "title": " ".join(str(field("title")).split()),
            "kind": str(field("kind")).strip(),
            "description": str(field("description")).strip(),
            "acceptance": _string_list(field("acceptance"), self.where(index, "acceptance")),
            "template": field("template") or None,
            "inputs": field("inputs"),
            "render_files": render_files,
            "depends_on": depends,
            "files": files,
            "reads": _string_list(field("reads"), self.where(index, "reads")),
            "verifiers": field("verifiers"),
            "route": field("route"),
        }
        if template.max_attempts is not None:
            data["max_attempts"] = template.max_attempts
        try:
            return Step.model_validate(data)
        except PlanError as exc:
            raise PlanError(exc.message, location=f"{self.where(index)} ({exc.location})") from None


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        py=repr,
        toml=lambda value: json.dumps(value, ensure_ascii=False),
        json=lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True),
        snake=snake_case,
        kebab=kebab_case,
        plural=pluralize,
        doc=lambda value: str(value).replace("\\", "\\\\").replace('"""', '\\"\\"\\"'),
    )
    return env


@lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    env = _environment()
    match = _WHOLE_EXPRESSION.match(source)
    if match:
        return ("expr", env.compile_expression(match.group("expr"), undefined_to_none=False))
    return ("text", env.from_string(source))


def _render(source: str, context: dict[str, Any], where: str) -> Any:
    if "{{" not in source and "{%" not in source and "{#" not in source:
        return source
    try:
        mode, compiled = _compile(source)
        if mode == "text":
            return compiled.render(context)
        value = compiled(**context)
        _fail_on_undefined(value)
        return value
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        detail = f" (template line {line})" if line and "\n" in source else ""
        raise PlanError(f"cannot expand: {exc.message or exc}{detail}", location=where) from None


def _fail_on_undefined(value: Any) -> None:
    """A bare expression hands back StrictUndefined instead of raising; make it raise like text does."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fail_on_undefined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _fail_on_undefined(item)


def _render_tree(value: Any, context: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return _render(value, context, where)
    if isinstance(value, list):
        return [_render_tree(v, context, where) for v in value]
    if isinstance(value, dict):
        return {
            str(_render_tree(k, context, where)): _render_tree(v, context, where) for k, v in value.items()
        }
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise PlanError(f"expected a list of strings, got {value!r}", location=where)


def _tidy(path: str, text: str) -> str:
    """Generated files end with one newline and carry no trailing spaces; Python files no runs of blanks."""
    lines = [line.rstrip() for line in text.splitlines()]
    body = "\n".join(lines).strip("\n")
    if path.endswith(".py"):
        body = _BLANKS.sub("\n\n\n", body)
    return body + "\n" if body else ""


def _lines_of(doc: Document) -> dict[str, int]:
    out: dict[str, int] = {}
    steps = doc.data.get("steps") if isinstance(doc.data, dict) else None
    for index, raw in enumerate(steps if isinstance(steps, list) else []):
        line = doc.line(("steps", index))
        if line is not None:
            out[str(index)] = line
        for key in raw if isinstance(raw, dict) else []:
            found = doc.line(("steps", index, key))
            if found is not None:
                out[f"{index}.{key}"] = found
    return out


def load_playbook(path: Path | str) -> Playbook:
    """Load a playbook file; problems raise ``PlanError`` at ``file:line: field``."""
    doc = read_document(path, PlanError, what="playbook")
    if not isinstance(doc.data, dict):
        raise PlanError("a playbook is a mapping", location=doc.where(()))
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        raise_validation(exc, doc, PlanError)
    playbook._source = str(path)
    playbook._lines = _lines_of(doc)
    return playbook


def builtin_playbook_dir() -> Path:
    """The built-in playbooks, shipped in the package as ``promptkit/playbooks``."""
    return package_data_dir("playbooks", PlanError)


def _search_path(extra: list[Path] | None = None) -> list[Path]:
    import os

    paths = list(extra or [])
    paths += [Path(p) for p in os.environ.get(PLAYBOOK_PATH_ENV, "").split(os.pathsep) if p]
    configured = load_config().raw.get("playbooks", {})
    if isinstance(configured, dict):
        paths += [Path(p) for p in configured.get("paths", []) if isinstance(p, str)]
    paths.append(builtin_playbook_dir())
    return paths


def list_playbooks(search_path: list[Path] | None = None) -> list[Playbook]:
    """Every playbook on the search path (earlier folders shadow later ones with the same name)."""
    found: dict[str, Playbook] = {}
    folders = _search_path(search_path)
    for folder in folders:
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.json")):
            playbook = load_playbook(file)
            found.setdefault(playbook.name, playbook)
    if not found:
        # Nothing to choose from is a broken setup, not "no playbook applies".
        searched = ", ".join(str(f) for f in folders)
        raise PlanError(f"no playbooks found; searched {searched}", location="playbook")
    return list(found.values())


def find_playbook(name: str | Path, search_path: list[Path] | None = None) -> Playbook:
    """A playbook by file path, or by name on the search path (``PROMPTKIT_PLAYBOOK_PATH``,
    ``[playbooks] paths`` in promptkit.toml, then the built-in ``promptkit/playbooks``)."""
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml", ".json") and as_path.exists():
        return load_playbook(as_path)
    for folder in _search_path(search_path):
        for suffix in (".yaml", ".yml", ".json"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return load_playbook(candidate)
    known = ", ".join(sorted(p.name for p in list_playbooks(search_path))) or "none"
    raise PlanError(f"no playbook named {str(name)!r}; known: {known}", location="playbook")


def playbook_for(spec: AppSpec | TaskSpec, search_path: list[Path] | None = None) -> Playbook:
    """The first playbook whose ``applies_to`` matches the spec's stack (or task)."""
    for playbook in list_playbooks(search_path):
        if playbook.applies(spec):
            return playbook
    what = f"task {spec.task!r}" if isinstance(spec, TaskSpec) else f"stack {spec.stack!r}"
    raise PlanError(f"no playbook applies to {what}", location=f"spec {spec.name!r}")
