"""The ``[router]`` table of promptkit.toml, checked key by key.

    [router]
    tiers = ["cheap", "strong"]          # aliases (or model strings), cheapest first
    max_attempts_per_tier = 2            # attempts on a tier (the first + repairs) before escalating
    [router.budget]
    max_usd = 2.0
    max_tokens = 500000
    [[router.rules]]
    tag = "app-building"                 # or kind = "plan", template = "debug", min_input_tokens = 4000 ...
    start_tier = "strong"                # or model = "strong"
    [router.fallbacks]
    strong = ["strong-backup"]           # deployments tried when the tier's first one has transport faults
    [router.retry]
    max_retries = 2
    base_delay_s = 0.5
    max_delay_s = 8.0
    [router.learned]
    policy = "policy.json"               # from `promptkit route train`: picks the tier a call starts at
    cost_weight = 200.0                  # tier policy, optional: λ, quality per dollar (default: the policy's)
    threshold = 0.2                      # skip policy, optional: P(cheap passes) below this starts at `skip_to`
    skip_to = "strong"                   # skip policy, optional: default the second tier
    explore = 0.05                       # optional: share of would-be skips that still try the cheap tier

A tier of its own settings is a table; ``[[router.tiers]]`` lists them, cheapest first (plain strings and
tables may mix in ``tiers = [...]``):

    [[router.tiers]]
    model = "cheap"                      # the alias (or model string); also the tier's name
    attempts = 1                         # this tier's attempts, instead of max_attempts_per_tier: 1 = no
                                         # repairs here, a failed check escalates at once
    [[router.tiers]]
    model = "strong"

A tier's ``attempts`` holds in ``generate()`` (unless the call passes ``max_attempts``) and in the executor
(where it overrides the plan step's ``max_attempts``). Small local models rarely repair their own answer,
so giving the cheap tier one attempt saves the time of repairs that seldom succeed.

Without ``tiers``, every configured alias not used as a fallback becomes a tier, grouped by its ``tier``
number (cheapest first); aliases sharing a number serve the same tier in declaration order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptkit.config import Config
from promptkit.errors import ConfigError
from promptkit.routing._cost_budget import Budget
from promptkit.routing._rules import RetryPolicy, Rule
from promptkit.routing._tiers import Deployment, Tier

__all__ = ["router_kwargs"]

_TOP = {"tiers", "max_attempts_per_tier", "budget", "rules", "fallbacks", "retry", "learned"}
_LEARNED = {
    "policy": (str,),
    "threshold": (int, float),
    "skip_to": (str, int),
    "cost_weight": (int, float),
    "explore": (int, float),
}
_BUDGET = {"max_usd": (int, float), "max_tokens": (int,), "default_output_tokens": (int,)}
_RETRY = {
    "max_retries": (int,),
    "base_delay_s": (int, float),
    "max_delay_s": (int, float),
    "jitter": (int, float),
    "max_retry_after_s": (int, float),
}
_TIER = {"model": (str,), "attempts": (int,)}
_RULE = {
    "tag": (str,),
    "kind": (str,),
    "template": (str,),
    "min_input_tokens": (int,),
    "max_input_tokens": (int,),
    "start_tier": (str, int),
    "model": (str,),
}


def _where(config: Config, key: str) -> str:
    return f"{config.source}: {key}" if config.source else key


def _table(config: Config, value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"must be a table, got {type(value).__name__}", location=_where(config, key))
    return value


def _typed(
    config: Config, table: dict[str, Any], schema: dict[str, tuple[type, ...]], key: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        if name not in schema:
            raise ConfigError(
                f"unknown key {name!r}; expected one of {sorted(schema)}",
                location=_where(config, f"{key}.{name}"),
            )
        # bool is an int in Python; no field here is a boolean.
        if isinstance(value, bool) or not isinstance(value, schema[name]):
            kinds = " or ".join(t.__name__ for t in schema[name])
            raise ConfigError(
                f"must be {kinds}, got {type(value).__name__} {value!r}",
                location=_where(config, f"{key}.{name}"),
            )
        out[name] = value
    return out


def _deployment(config: Config, ref: Any, key: str) -> Deployment:
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"must be a model alias or model string, got {ref!r}", location=_where(config, key))
    if config.alias(ref) is None and ":" not in ref:
        aliases = ", ".join(sorted(config.models)) or "none configured"
        raise ConfigError(
            f"{ref!r} is not a configured alias (aliases: {aliases}) nor a 'scheme:model' string",
            location=_where(config, key),
        )
    return Deployment(ref, config=config)


def _fallbacks(config: Config, raw: Any) -> dict[str, list[str]]:
    table = _table(config, raw, "[router.fallbacks]")
    out: dict[str, list[str]] = {}
    for name, refs in table.items():
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ConfigError(
                "must be a list of aliases", location=_where(config, f"[router.fallbacks].{name}")
            )
        out[name] = refs
    return out


def _tier_entries(config: Config, raw: Any) -> list[tuple[Any, int | None, str]]:
    """Each entry of ``tiers``: its model, its own attempts (None: the router's) and where it is written."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "must be a non-empty list of aliases or [[router.tiers]] tables",
            location=_where(config, "[router].tiers"),
        )
    entries: list[tuple[Any, int | None, str]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            entries.append((item, None, f"[router].tiers[{i}]"))  # the alias is checked with the others
            continue
        key = f"[[router.tiers]][{i}]"
        fields = _typed(config, item, _TIER, key)
        if "model" not in fields:
            raise ConfigError('needs model = "<alias>"', location=_where(config, key))
        attempts = fields.get("attempts")
        if attempts is not None and attempts < 1:
            raise ConfigError(
                f"must be an integer >= 1, got {attempts!r}", location=_where(config, f"{key}.attempts")
            )
        entries.append((fields["model"], attempts, f"{key}.model"))
    return entries


def _tiers(config: Config, router: dict[str, Any], fallbacks: dict[str, list[str]]) -> list[Tier]:
    attempts: dict[int, int | None] = {}
    wheres: dict[int, str] = {}
    if "tiers" in router:
        entries = _tier_entries(config, router["tiers"])
        names = [model for model, _, _ in entries]
        attempts = {i: n for i, (_, n, _) in enumerate(entries)}
        wheres = {i: where for i, (_, _, where) in enumerate(entries)}
    else:
        used_as_fallback = {ref for refs in fallbacks.values() for ref in refs}
        candidates = [a for a in config.models.values() if a.name not in used_as_fallback]
        if not candidates:
            raise ConfigError(
                "no tiers: set [router] tiers = [...] or define [models.<alias>] tables",
                location=_where(config, "[router].tiers"),
            )
        groups: dict[int, list[str]] = {}
        for alias in candidates:
            groups.setdefault(alias.tier, []).append(alias.name)
        names = [group[0] for _, group in sorted(groups.items())]
        for _, group in groups.items():
            fallbacks.setdefault(group[0], []).extend(
                n for n in group[1:] if n not in fallbacks.get(group[0], [])
            )

    unknown = set(fallbacks) - {str(n) for n in names}
    if unknown:
        raise ConfigError(
            f"fallbacks for {sorted(unknown)}, which are not tiers ({names})",
            location=_where(config, "[router.fallbacks]"),
        )
    tiers = []
    for i, name in enumerate(names):
        deployments = [_deployment(config, name, wheres.get(i, f"[router].tiers[{i}]"))]
        for j, ref in enumerate(fallbacks.get(name, [])):
            deployments.append(_deployment(config, ref, f"[router.fallbacks].{name}[{j}]"))
        tiers.append(Tier(name, deployments, max_attempts=attempts.get(i)))
    return tiers


def _rules(config: Config, raw: Any) -> list[Rule]:
    if not isinstance(raw, list):
        raise ConfigError(
            "must be an array of tables ([[router.rules]])", location=_where(config, "[router].rules")
        )
    rules = []
    for i, item in enumerate(raw):
        key = f"[[router.rules]][{i}]"
        fields = _typed(config, _table(config, item, key), _RULE, key)
        if "model" in fields:
            _deployment(config, fields["model"], f"{key}.model")
        try:
            rules.append(Rule(**fields))
        except ConfigError as exc:
            raise ConfigError(exc.message, location=_where(config, key)) from None
    return rules


def router_kwargs(config: Config) -> dict[str, Any]:
    """Keyword arguments for ``Router(...)`` from ``config.router``; a bad key raises ``ConfigError`` naming it."""
    router = config.router or {}
    for key in router:
        if key not in _TOP:
            raise ConfigError(
                f"unknown key {key!r}; expected one of {sorted(_TOP)}",
                location=_where(config, f"[router].{key}"),
            )
    kwargs: dict[str, Any] = {"config": config}
    fallbacks = _fallbacks(config, router.get("fallbacks", {}))
    kwargs["tiers"] = _tiers(config, router, fallbacks)

    if "max_attempts_per_tier" in router:
        value = router["max_attempts_per_tier"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"must be an integer >= 1, got {value!r}",
                location=_where(config, "[router].max_attempts_per_tier"),
            )
        kwargs["max_attempts_per_tier"] = value
    if "budget" in router:
        fields = _typed(
            config, _table(config, router["budget"], "[router.budget]"), _BUDGET, "[router.budget]"
        )
        try:
            kwargs["budget"] = Budget(**fields)
        except ConfigError as exc:
            raise ConfigError(exc.message, location=_where(config, "[router.budget]")) from None
    if "retry" in router:
        fields = _typed(config, _table(config, router["retry"], "[router.retry]"), _RETRY, "[router.retry]")
        try:
            kwargs["retry"] = RetryPolicy(**fields)
        except ConfigError as exc:
            raise ConfigError(exc.message, location=_where(config, "[router.retry]")) from None
    if "rules" in router:
        kwargs["rules"] = _rules(config, router["rules"])
    if "learned" in router:
        kwargs["start_policy"] = _learned(config, router["learned"])
    return kwargs


def _learned(config: Config, raw: Any) -> Any:
    from promptkit.routing.learned import LearnedStartTier

    fields = _typed(config, _table(config, raw, "[router.learned]"), _LEARNED, "[router.learned]")
    if "policy" not in fields:
        raise ConfigError('needs policy = "<file>"', location=_where(config, "[router.learned]"))
    path = Path(fields.pop("policy")).expanduser()
    if not path.is_absolute() and config.source is not None:
        path = config.source.parent / path
    try:
        return LearnedStartTier(path, **fields)
    except ConfigError as exc:
        raise ConfigError(exc.message, location=_where(config, "[router.learned]")) from None
