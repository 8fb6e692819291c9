"""Project configuration: ``promptkit.toml``, or ``[tool.promptkit]`` in ``pyproject.toml``.

[templates]
paths = ["my_templates"]          # searched before the built-in library

[state]
dir = ".promptkit"                # cache, ledger and run logs live here

[models.cheap]                     # an alias: use model="cheap"
model = "local:models/qwen.gguf"   # or "litellm:openai/gpt-4o-mini"
tier = 0                           # cascades go up tiers, cheapest first
input_cost_per_token = 0.0
output_cost_per_token = 0.0
concurrency = 1
n_ctx = 4096                       # any other key is an option for the backend

[router]                           # read by promptkit.routing
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ModelAlias", "Config", "load_config", "CONFIG_FILE", "STATE_ENV", "TEMPLATE_PATH_ENV"]

CONFIG_FILE = "promptkit.toml"
STATE_ENV = "PROMPTKIT_HOME"
TEMPLATE_PATH_ENV = "PROMPTKIT_TEMPLATE_PATH"

_ALIAS_FIELDS = {"model", "tier", "input_cost_per_token", "output_cost_per_token", "concurrency"}


class ModelAlias(BaseModel):
    """A named model: where it lives, its tier, its price per token and how many calls may be in flight."""

    name: str
    model: str
    tier: int = 0
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    concurrency: int = Field(default=4, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class Config(BaseModel):
    source: Path | None = None
    template_paths: list[Path] = Field(default_factory=list)
    state_dir: Path = Path(".promptkit")
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    router: dict[str, Any] = Field(default_factory=dict)
    cache: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)

    def alias(self, name: str) -> ModelAlias | None:
        return self.models.get(name)


# --- the file's schema: every table promptkit reads, typed; other keys pass through to their readers ----------


class _Table(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _TemplatesTable(_Table):
    paths: list[str] = []


class _StateTable(_Table):
    dir: str | None = None
    models_dir: str | None = Field(default=None, min_length=1)


class _ModelTable(_Table):
    model: str = Field(min_length=1)
    tier: int = 0
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    concurrency: int = Field(default=4, ge=1)
    # Backend options most backends share; the others are checked by the backend that reads them.
    timeout_s: float | None = Field(default=None, gt=0)
    n_ctx: int | None = Field(default=None, ge=1)
    api_base: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] | None = None


class _SemanticTable(BaseModel):
    """[cache.semantic]'s keys: promptkit.cache.SemanticSettings' fields (a test keeps the two equal; the cache
    layer sits above this module). The settings check the values when the semantic cache is used."""

    model_config = ConfigDict(extra="forbid")
    threshold: Any = None
    margin: Any = None
    lexical_weight: Any = None
    scorer: Any = None
    classifier: Any = None
    confidence: Any = None
    guards: Any = None
    candidates: Any = None
    index: Any = None
    ttl_s: Any = None
    templates: Any = None
    namespaces: Any = None


class _CacheTable(_Table):
    ttl_s: float | None = Field(default=None, gt=0)
    namespace: str | None = Field(default=None, min_length=1)
    # Values are checked by the semantic cache's settings when it is used; a misspelt key would otherwise be
    # ignored without a word (`treshold = 0.95` leaves the default threshold).
    semantic: _SemanticTable | None = None


class _TracingTable(BaseModel):
    # Every key is known here (tracing.setup reads them), so a misspelt one is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid", strict=True)
    otlp_endpoint: str | None = None
    enabled: bool = True
    service_name: str | None = None
    record_content: bool = False


class _PlaybooksTable(_Table):
    paths: list[str] = []


class _ConfigFile(_Table):
    templates: _TemplatesTable = _TemplatesTable()
    state: _StateTable = _StateTable()
    models: dict[str, _ModelTable] = {}
    router: dict[str, Any] = {}
    cache: _CacheTable = _CacheTable()
    playbooks: _PlaybooksTable = _PlaybooksTable()
    tracing: _TracingTable = _TracingTable()


_PROBLEMS = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "missing": "is required",
    "extra_forbidden": "unknown key; expected one of {known}",
}
_KEY = re.compile(
    r"""\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _dotted_keys(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text)]


def _line_of(text: str, path: list[str]) -> int | None:
    """The line that sets ``path`` (or, failing that, its longest known prefix) in TOML ``text``."""
    best: tuple[int, int] | None = None  # (matched keys, line)
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            keys = table = _dotted_keys(header.group(1))
        else:
            key = _KEY.match(line)
            if not key:
                continue
            keys = table + _dotted_keys(key.group(1))
        if keys == path[: len(keys)] and (best is None or len(keys) > best[0]):
            best = (len(keys), number)
    return best[1] if best else None


def _table_model(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The schema model of the table at ``loc`` (for the keys an unknown one could have been)."""
    model: type[BaseModel] = _ConfigFile
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        for candidate in (annotation, *get_args(annotation)):  # `Table | None` too
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
    return model


def _config_error(exc: ValidationError, source: Path | None, prefix: list[str]) -> ConfigError:
    """``file:LINE: field: problem`` for the first problem (and how many more there are)."""
    err = exc.errors()[0]
    keys = [str(p) for p in err["loc"] if not isinstance(p, int)]  # list indexes share their key's line
    field = ""
    for part in err["loc"]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    problem = _PROBLEMS.get(err["type"], err["msg"])
    if err["type"] == "extra_forbidden":
        problem = problem.format(known=", ".join(_table_model(err["loc"][:-1]).model_fields))
    if err["type"] not in ("missing", "extra_forbidden"):
        got = repr(err["input"])
        problem += f", got {got if len(got) <= 80 else got[:77] + '...'}"
    if exc.error_count() > 1:
        problem += f" (and {exc.error_count() - 1} more problem(s))"
    where = str(source) if source else "config"
    if source is not None:
        try:
            line = _line_of(source.read_text(encoding="utf-8"), prefix + keys)
        except OSError:
            line = None
        if line is not None:
            where += f":{line}"
    return ConfigError(f"{field or 'config'}: {problem}", location=where)


def _find_file(start: Path) -> tuple[Path, dict[str, Any]] | None:
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate, _read_toml(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            data = _read_toml(pyproject)
            section = data.get("tool", {}).get("promptkit")
            if section is not None:
                return pyproject, section
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", location=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", location=str(path)) from None


def _parse(data: dict[str, Any], source: Path | None) -> Config:
    where = str(source) if source else "config"
    base = source.parent if source else Path.cwd()
    prefix = ["tool", "promptkit"] if source is not None and source.name == "pyproject.toml" else []
    try:
        checked = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, source, prefix) from None

    def resolve(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else base / path

    template_paths = [resolve(p) for p in checked.templates.paths]
    state_dir = resolve(checked.state.dir if checked.state.dir is not None else ".promptkit")

    models: dict[str, ModelAlias] = {}
    for name, spec in (data.get("models") or {}).items():
        fields = {k: v for k, v in spec.items() if k in _ALIAS_FIELDS}
        options = {k: v for k, v in spec.items() if k not in _ALIAS_FIELDS}
        try:
            models[name] = ModelAlias(name=name, options=options, **fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"[models.{name}] {field}: {err['msg']}", location=where) from None

    return Config(
        source=source,
        template_paths=template_paths,
        state_dir=state_dir,
        models=models,
        router=data.get("router", {}) or {},
        cache=data.get("cache", {}) or {},
        raw=data,
    )


def load_config(start: Path | str | None = None, *, path: Path | str | None = None) -> Config:
    """Find and parse the configuration, searching upward from ``start`` (default: the current folder).

    ``PROMPTKIT_TEMPLATE_PATH`` (os.pathsep-separated) adds template folders in front of the configured ones;
    ``PROMPTKIT_HOME`` overrides the state folder.
    """
    if path is not None:
        source: Path | None = Path(path)
        data = _read_toml(Path(path))
        if Path(path).name == "pyproject.toml":
            data = data.get("tool", {}).get("promptkit", {})
    else:
        found = _find_file(Path(start) if start else Path.cwd())
        source, data = found if found else (None, {})
    config = _parse(data, source)
    env_paths = [Path(p) for p in os.environ.get(TEMPLATE_PATH_ENV, "").split(os.pathsep) if p]
    if env_paths:
        config.template_paths = env_paths + config.template_paths
    if os.environ.get(STATE_ENV):
        config.state_dir = Path(os.environ[STATE_ENV])
    return config
