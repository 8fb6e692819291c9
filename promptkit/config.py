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
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

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

    def resolve(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else base / path

    templates = data.get("templates", {})
    if not isinstance(templates, dict) or not isinstance(templates.get("paths", []), list):
        raise ConfigError("[templates] paths must be a list of folders", location=where)
    template_paths = [resolve(p) for p in templates.get("paths", [])]

    state = data.get("state", {})
    state_dir = resolve(state.get("dir", ".promptkit")) if isinstance(state, dict) else base / ".promptkit"

    models: dict[str, ModelAlias] = {}
    for name, spec in (data.get("models") or {}).items():
        if not isinstance(spec, dict) or "model" not in spec:
            raise ConfigError(f"[models.{name}] needs a 'model' string", location=where)
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
