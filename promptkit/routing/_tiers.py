"""Tiers and deployments: what the router can call, cheapest tier first, fallbacks within a tier."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from promptkit.backends import Backend
from promptkit.config import Config, ModelAlias
from promptkit.errors import ConfigError

if TYPE_CHECKING:
    from promptkit.backends import ResolvedModel

__all__ = ["Deployment", "Tier"]


class Deployment:
    """One way to serve a tier: a model string/alias or a ready Backend, with optional overrides.

    The backend is resolved on first use (resolving may load a model) and then reused. ``concurrency``
    overrides the in-flight limit (default: a local model's ``parallel`` slots, 1 unless set, else the
    alias' ``concurrency``);
    ``timeout_s`` bounds each call; the prices override the alias' when the backend reports no cost.
    """

    def __init__(
        self,
        model: str | Backend,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        input_cost_per_token: float | None = None,
        output_cost_per_token: float | None = None,
        local: bool | None = None,
        config: Config | None = None,
    ) -> None:
        if not isinstance(model, (str, Backend)):
            raise ConfigError(f"a deployment needs a model string or a Backend, got {type(model).__name__}")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"deployment {name or model!r}: concurrency must be >= 1, got {concurrency}")
        if timeout_s is not None and timeout_s <= 0:
            raise ConfigError(f"deployment {name or model!r}: timeout_s must be > 0, got {timeout_s}")
        self.model = model
        self.name = name or (model if isinstance(model, str) else model.name)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.input_cost_per_token = input_cost_per_token
        self.output_cost_per_token = output_cost_per_token
        self.local = local
        self.config = config
        self._resolved: ResolvedModel | None = None
        self._is_local: bool | None = None
        self._fixed: tuple[tuple[float | None, float | None], float | None] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Deployment({self.name!r})"

    def resolve(self) -> ResolvedModel:
        resolved = self._resolved
        if resolved is None:
            from promptkit.backends import resolve_model

            with self._lock:
                if self._resolved is None:
                    self._resolved = resolve_model(self.model, self.config)
                resolved = self._resolved
        return resolved

    @property
    def alias(self) -> ModelAlias:
        return self.resolve().alias

    @property
    def backend(self) -> Backend:
        return self.resolve().backend

    @property
    def cache_id(self) -> str:
        """What identifies this deployment's model in cache keys: the resolved model, not the alias name."""
        resolved = self.resolve()
        return resolved.alias.model if isinstance(self.model, str) else f"backend:{resolved.backend.name}"

    @property
    def is_local(self) -> bool:
        if self.local is not None:
            return self.local
        known = self._is_local
        if known is None:  # fixed once resolved; asked on every call
            resolved = self.resolve()
            known = resolved.alias.model.startswith("local:") or bool(
                getattr(resolved.backend, "is_local", False)
            )
            self._is_local = known
        return known

    @property
    def limit(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        if self.is_local:  # one call at a time on a GGUF, unless the backend batches (parallel slots)
            return max(1, int(getattr(self.backend, "parallel", 1)))
        return self.alias.concurrency

    @property
    def prices(self) -> tuple[float | None, float | None]:
        return self._settings()[0]

    @property
    def call_timeout_s(self) -> float | None:
        return self._settings()[1]

    def _settings(self) -> tuple[tuple[float | None, float | None], float | None]:
        # Asked on every call and fixed once the deployment is resolved: worked out once.
        settings = self._fixed
        if settings is None:
            alias = self.alias
            inp = self.input_cost_per_token
            out = self.output_cost_per_token
            prices = (
                inp if inp is not None else alias.input_cost_per_token,
                out if out is not None else alias.output_cost_per_token,
            )
            timeout: float | None = self.timeout_s
            if timeout is None and isinstance(self.model, str):
                value = alias.options.get("timeout_s")
                timeout = float(value) if isinstance(value, (int, float)) else None
            settings = self._fixed = (prices, timeout)
        return settings


class Tier:
    """A rung of the cascade: one or more deployments; the 2nd and later serve when the 1st has transport faults.

    ``max_attempts`` is this rung's attempts (the first and its repairs) before the cascade escalates: it
    overrides the router's ``max_attempts_per_tier`` in ``generate()`` and a plan step's ``max_attempts`` in
    the executor (``attempts`` on a ``[[router.tiers]]`` entry). 1 means no repairs on this tier.
    """

    def __init__(
        self,
        name: str,
        deployments: Sequence[Deployment | str | Backend] | Deployment | str | Backend,
        *,
        max_attempts: int | None = None,
    ) -> None:
        if isinstance(deployments, (Deployment, str)) or isinstance(deployments, Backend):  # a single one
            deployments = [deployments]
        items = [d if isinstance(d, Deployment) else Deployment(d) for d in deployments]
        if not items:
            raise ConfigError(f"tier {name!r} has no deployments")
        if max_attempts is not None and max_attempts < 1:
            raise ConfigError(f"tier {name!r}: max_attempts must be >= 1, got {max_attempts}")
        self.name = name
        self.deployments: tuple[Deployment, ...] = tuple(items)
        self.max_attempts = max_attempts

    def __repr__(self) -> str:
        return f"Tier({self.name!r}, {list(self.deployments)!r})"

    @property
    def primary(self) -> Deployment:
        return self.deployments[0]
