"""App specs (what to build) and task specs (what to fix or refactor), loaded from YAML or JSON.

An app spec::

    name: todo-api                       # slug
    summary: A small todo-list HTTP API.
    stack: python-fastapi-sqlite         # or python-cli, python-library
    package: todo_api                    # optional; derived from name
    entities:
      - name: Todo                       # PascalCase
        fields:
          - {name: title, type: str, max_length: 200}
          - {name: done, type: bool, default: false}
          - {name: due, type: date, required: false}
    features:
      - id: mark-all-done
        description: POST /todos/mark-all-done marks every todo done and returns how many changed.
        acceptance: [...]
    constraints: [No third-party dependencies beyond FastAPI and pydantic.]

A task spec (for the ``fix_failing_test`` and ``refactor_module`` playbooks) has ``task:`` instead of
``stack:``; see :class:`TaskSpec`.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from promptkit.errors import SpecError
from promptkit.planning._naming import PACKAGE, PASCAL, SLUG, SNAKE, is_python_name, snake_case
from promptkit.prompts import Document, field_path, parse_document, raise_validation, read_document

__all__ = [
    "STACKS",
    "FIELD_TYPES",
    "TASKS",
    "Stack",
    "FieldType",
    "EntityField",
    "Entity",
    "Feature",
    "FeatureExample",
    "AppSpec",
    "TaskSpec",
    "Spec",
    "load_spec",
    "parse_spec",
]

Stack = Literal["python-fastapi-sqlite", "python-cli", "python-library"]
STACKS: tuple[str, ...] = ("python-fastapi-sqlite", "python-cli", "python-library")
FieldType = Literal["str", "int", "float", "bool", "datetime", "date", "text"]
FIELD_TYPES: tuple[str, ...] = ("str", "int", "float", "bool", "datetime", "date", "text")
TaskKind = Literal["fix-failing-test", "refactor-module"]
TASKS: tuple[str, ...] = ("fix-failing-test", "refactor-module")

# Names the generated code uses itself: an entity field may not take them.
_RESERVED_FIELDS = frozenset(
    {"id", "command", "entity", "action", "handler", "db_path", "as_json", "item_id", "changes", "data"}
)
_RESERVED_PACKAGES = frozenset({"tests", "test", "features"})
# Modules the python-library scaffold writes itself; a feature module may not take their names.
_LIBRARY_MODULES = frozenset({"models", "serialize", "features"})


class _Problem(SpecError):
    """A cross-field problem found after parsing; ``path`` lets the loader add the file and line."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        self.path = path
        super().__init__(message, location=f"spec: {field_path(path)}")


class EntityField(BaseModel):
    """One field of an entity. ``required: false`` makes it nullable; a ``default`` makes it optional input."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: FieldType
    required: bool = True
    default: Any = None
    unique: bool = False
    max_length: int | None = Field(default=None, ge=1)
    min: float | None = None
    max: float | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SNAKE.match(value):
            raise ValueError(f"{value!r} must be snake_case (lowercase letters, digits and _)")
        if not is_python_name(value) or value in _RESERVED_FIELDS or value.startswith("model_"):
            raise ValueError(
                f"{value!r} is reserved (Python keyword, 'model_' prefix or used by generated code)"
            )
        if hasattr(BaseModel, value):
            raise ValueError(f"{value!r} would shadow a pydantic BaseModel attribute")
        return value

    @property
    def has_default(self) -> bool:
        return self.default is not None or not self.required


class Entity(BaseModel):
    """A thing the app stores: a pydantic model, a table or a JSON collection, CRUD operations and tests."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    fields: list[EntityField] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PASCAL.match(value):
            raise ValueError(f"{value!r} must be PascalCase (e.g. TodoItem)")
        return value


_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def parse_http_call(text: str) -> tuple[str, str, Any]:
    """``"POST /todos {"title": "a"}"`` -> ("POST", "/todos", {"title": "a"}); ValueError saying what is wrong."""
    import json

    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0].upper() not in _HTTP_METHODS or not parts[1].startswith("/"):
        raise ValueError(
            f"{text!r} must look like 'POST /path {{json body}}' (GET, POST, PUT, PATCH or DELETE)"
        )
    body = None
    if len(parts) == 3:
        try:
            body = json.loads(parts[2])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{text!r}: the body is not JSON: {exc.msg}") from None
    return parts[0].upper(), parts[1], body


class FeatureExample(BaseModel):
    """A concrete acceptance check, turned into a test without a model: the calls that set the scene
    (``given``), the call under test, and the answer it must give. For HTTP apps (``request:``) each call is
    ``"METHOD /path {json body}"`` and the answer a ``status`` and a JSON ``response``; for command lines
    (``run:``) each call is the command's arguments as a shell splits them (``link add --code gh``) and the
    answer an ``exit`` status and ``stdout``/``stderr`` (compared without surrounding whitespace) or
    ``stdout_json`` (stdout parsed as JSON)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    request: str | None = None
    run: str | None = None
    given: list[str] = Field(default_factory=list)
    status: int = Field(default=200, ge=100, le=599)
    response: Any = None
    exit: int = Field(default=0, ge=0, le=255)
    stdout: str | None = None
    stderr: str | None = None
    stdout_json: Any = None

    @field_validator("request")
    @classmethod
    def _request(cls, value: str | None) -> str | None:
        if value is not None:
            parse_http_call(value)
        return value

    @field_validator("run")
    @classmethod
    def _run(cls, value: str | None) -> str | None:
        if value is not None:
            split_command(value)
        return value

    @field_validator("given")
    @classmethod
    def _given(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for call in value:
            if info.data.get("run") is not None:
                split_command(call)
            else:
                parse_http_call(call)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FeatureExample:
        if (self.request is None) == (self.run is None):
            raise ValueError("an example has either `request:` (an HTTP call) or `run:` (a command line)")
        # By value, not by the keys given: a plan's JSON carries every field with its default.
        command = (self.exit, self.stdout, self.stderr, self.stdout_json) != (0, None, None, None)
        if self.request is not None and command:
            raise ValueError("exit, stdout, stderr and stdout_json belong to `run:` examples")
        if self.run is not None and (self.status, self.response) != (200, None):
            raise ValueError(
                "status and response belong to `request:` examples; a command has exit and stdout"
            )
        return self


def split_command(text: str) -> list[str]:
    """A command line's arguments, split as a shell would; ValueError for unbalanced quotes or none."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if not argv:
        raise ValueError("a command needs at least one argument")
    return argv


class Feature(BaseModel):
    """A behaviour in natural language; a model implements it, tests prove it. ``examples`` are acceptance
    checks concrete enough to become tests without a model (HTTP apps and command lines)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    description: str = Field(min_length=1)
    acceptance: list[str] = Field(default_factory=list)
    examples: list[FeatureExample] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not SLUG.match(value) or not value[0].isalpha():
            raise ValueError(
                f"{value!r} must be a slug (lowercase letters, digits and -, starting with a letter)"
            )
        return value


class AppSpec(BaseModel):
    """What to build: a named app on one stack, its entities, features and constraints."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["app"] = "app"
    name: str
    summary: str = Field(min_length=1)
    stack: Stack
    entities: list[Entity] = Field(default_factory=list)
    features: list[Feature] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)
    package: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SLUG.match(value) or not value[0].isalpha():
            raise ValueError(
                f"{value!r} must be a slug (lowercase letters, digits and -, starting with a letter)"
            )
        return value

    @field_validator("package")
    @classmethod
    def _package(cls, value: str) -> str:
        if value and (not PACKAGE.match(value) or not is_python_name(value) or value in _RESERVED_PACKAGES):
            raise ValueError(f"{value!r} is not a usable Python package name")
        return value

    @model_validator(mode="after")
    def _cross_check(self) -> AppSpec:
        if not self.package:
            self.package = snake_case(self.name)
            if not is_python_name(self.package) or self.package in _RESERVED_PACKAGES:
                raise _Problem(("name",), f"cannot derive a package from {self.name!r}; set 'package'")
        for path, message in _problems(self):
            raise _Problem(path, message)
        return self

    def to_yaml(self) -> str:
        """The spec as YAML, keys in declaration order (what the LLM planner shows the model)."""
        data = self.model_dump(mode="json", exclude={"kind"})
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _default_problem(f: EntityField) -> str | None:
    value = f.default
    if value is None:
        return None
    ok = {
        "str": isinstance(value, str),
        "text": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "date": isinstance(value, dt.date) and not isinstance(value, dt.datetime),
        "datetime": isinstance(value, dt.datetime),
    }[f.type]
    if not ok and isinstance(value, str) and f.type in ("date", "datetime"):
        try:
            (dt.date if f.type == "date" else dt.datetime).fromisoformat(value)
            ok = True
        except ValueError:
            ok = False
    if not ok:
        return f"{value!r} is not a valid {f.type}"
    if f.max_length is not None and isinstance(value, str) and len(value) > f.max_length:
        return f"{value!r} is longer than max_length {f.max_length}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if f.min is not None and value < f.min:
            return f"{value!r} is below min {f.min:g}"
        if f.max is not None and value > f.max:
            return f"{value!r} is above max {f.max:g}"
    return None


def _problems(spec: AppSpec) -> Iterator[tuple[tuple[Any, ...], str]]:
    seen: dict[str, int] = {}
    for i, entity in enumerate(spec.entities):
        if entity.name in seen:
            yield (
                ("entities", i, "name"),
                f"duplicate entity {entity.name!r} (also entities[{seen[entity.name]}])",
            )
        seen[entity.name] = i
        names: dict[str, int] = {}
        for j, f in enumerate(entity.fields):
            where = ("entities", i, "fields", j)
            if f.name in names:
                yield (*where, "name"), f"duplicate field {f.name!r} (also fields[{names[f.name]}])"
            names[f.name] = j
            if f.max_length is not None and f.type not in ("str", "text"):
                yield (*where, "max_length"), f"only str and text fields have a max_length, not {f.type}"
            for bound in ("min", "max"):
                if getattr(f, bound) is not None and f.type not in ("int", "float"):
                    yield (*where, bound), f"only int and float fields have a {bound}, not {f.type}"
            if f.min is not None and f.max is not None and f.min > f.max:
                yield (*where, "min"), f"min {f.min:g} is greater than max {f.max:g}"
            if f.unique and f.type == "int" and f.min is not None and f.max is not None and f.max - f.min < 1:
                yield (*where, "unique"), "a unique field needs room for at least two values"
            if f.unique and f.type == "bool":
                yield (*where, "unique"), "a bool field cannot be unique"
            problem = _default_problem(f)
            if problem:
                yield (*where, "default"), problem
    snakes: dict[str, int] = {}
    for i, entity in enumerate(spec.entities):
        key = snake_case(entity.name)
        if key in snakes:
            yield (
                ("entities", i, "name"),
                f"{entity.name!r} clashes with entities[{snakes[key]}] once snake_cased",
            )
        snakes[key] = i
    # An example's kind must be the one the stack's playbook renders into tests.
    wanted = {"python-fastapi-sqlite": "request", "python-cli": "run"}.get(spec.stack)
    for i, feature in enumerate(spec.features):
        for j, example in enumerate(feature.examples):
            kind = "request" if example.request is not None else "run"
            if wanted is None:
                yield (
                    ("features", i, "examples", j),
                    f"a {spec.stack} feature has no examples; write checks as Python in acceptance, "
                    "e.g. 'f(2) == 4'",
                )
            elif kind != wanted:
                what = "HTTP calls (`request:`)" if wanted == "request" else "command lines (`run:`)"
                yield ("features", i, "examples", j, kind), f"a {spec.stack} app's examples are {what}"
    ids: dict[str, int] = {}
    modules: dict[str, int] = {}
    for i, feature in enumerate(spec.features):
        if feature.id in ids:
            yield (
                ("features", i, "id"),
                f"duplicate feature id {feature.id!r} (also features[{ids[feature.id]}])",
            )
        ids[feature.id] = i
        module = snake_case(feature.id)
        if module in modules and modules[module] != ids[feature.id]:
            yield (
                ("features", i, "id"),
                f"{feature.id!r} clashes with features[{modules[module]}] as a module",
            )
        modules[module] = i
        if spec.stack == "python-library" and module in _LIBRARY_MODULES:
            yield ("features", i, "id"), f"{feature.id!r} would replace the library's own {module}.py module"
    if spec.stack in ("python-fastapi-sqlite", "python-cli") and not spec.entities:
        yield ("entities",), f"the {spec.stack} stack needs at least one entity"


def _relative(value: str) -> str:
    pure = PurePosixPath(value)
    if not value or "\\" in value or pure.is_absolute() or ".." in pure.parts or value.startswith("~"):
        raise ValueError(f"{value!r} must be a relative path inside the workspace")
    return value


class TaskSpec(BaseModel):
    """Work on an existing project, for the ``fix_failing_test`` and ``refactor_module`` playbooks.

    ``task: fix-failing-test``: ``target`` is the failing test (``tests/test_x.py::test_name`` or a file);
    ``files`` are the source files the fix may change; ``tests`` must keep passing.

    ``task: refactor-module``: ``target`` is the module to restructure (``pkg/module.py``), ``goal`` what the
    refactoring should achieve; ``files`` are further files it may touch; ``tests`` pin the behaviour.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["task"] = "task"
    task: TaskKind
    name: str
    summary: str = Field(min_length=1)
    target: str
    goal: str = ""
    files: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=lambda: ["tests"])
    constraints: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SLUG.match(value) or not value[0].isalpha():
            raise ValueError(
                f"{value!r} must be a slug (lowercase letters, digits and -, starting with a letter)"
            )
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        _relative(value.split("::", 1)[0])
        return value

    @field_validator("files", "tests")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_relative(v) for v in value]

    @model_validator(mode="after")
    def _cross_check(self) -> TaskSpec:
        if self.task == "fix-failing-test" and not self.files:
            raise _Problem(("files",), "a fix-failing-test task must list the files the fix may change")
        if self.task == "refactor-module":
            if not self.target.endswith(".py") or "::" in self.target:
                raise _Problem(("target",), "a refactor-module target is a Python file such as pkg/module.py")
            if not self.goal:
                raise _Problem(("goal",), "a refactor-module task needs a goal")
        return self

    @property
    def target_file(self) -> str:
        return self.target.split("::", 1)[0]

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude={"kind"})
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _spec_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return str(getattr(value, "kind", "app"))
    if isinstance(value, dict):
        return "task" if value.get("kind") == "task" or "task" in value else "app"
    return "app"


Spec = Annotated[Annotated[AppSpec, Tag("app")] | Annotated[TaskSpec, Tag("task")], Discriminator(_spec_tag)]


def _validate(doc: Document) -> AppSpec | TaskSpec:
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(f"a spec is a mapping, not {type(data).__name__}", location=doc.where(()))
    model: type[AppSpec] | type[TaskSpec] = TaskSpec if _spec_tag(data) == "task" else AppSpec
    try:
        return model.model_validate(data)
    except _Problem as problem:
        raise SpecError(problem.message, location=doc.where(problem.path)) from None
    except ValidationError as exc:
        raise_validation(exc, doc, SpecError)


def parse_spec(data: Any, *, source: str = "spec") -> AppSpec | TaskSpec:
    """Validate already-loaded data (a dict, or JSON/YAML text); errors name ``source`` and the field."""
    if isinstance(data, str):
        return _validate(parse_document(data, source, SpecError))
    return _validate(Document(data, source))


def load_spec(path: Path | str) -> AppSpec | TaskSpec:
    """Load and validate a spec file (``.yaml``, ``.yml`` or ``.json``).

    Returns an :class:`AppSpec`, or a :class:`TaskSpec` when the document has a ``task:`` key. Raises
    ``SpecError`` located at ``file:line: field`` (e.g. ``todo.yaml:14: entities[0].fields[2].type``).
    """
    return _validate(read_document(path, SpecError, what="spec"))
