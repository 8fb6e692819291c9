"""Scorers: each turns one model output into a :class:`~promptkit.evals._eval_log.Score`.

A scorer is any object with a ``name`` and ``async __call__(item, output, parsed) -> Score``: ``item`` is
the dataset :class:`Item`, ``output`` the :class:`Generation` (raw text plus latency, cost and tokens) and
``parsed`` the structured output as JSON-able data (the text for free-text templates).

Built-in types: exact, normalized, contains, regex, numeric, json_schema, code_exec, judge, similarity,
latency, cost, and custom (registered with ``@scorer("name")`` or the ``promptkit.scorers`` entry points).
Pass/fail scorers threshold at 1 unless told otherwise (``threshold: null`` turns the verdict off).

This module is the registry (every type above, custom ones, building from a suite spec) and holds the text
scorers; the others have a module each: ``_code_scorer`` (sandboxed code execution), ``_judge_scorers``
(judge and pairwise judge), ``_similarity``. What they share is in ``_scorer_base``.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import string
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from promptkit._plugins import Registry, did_you_mean
from promptkit.errors import EvalError, PromptkitError
from promptkit.evals._dataset import Item
from promptkit.evals._eval_log import Score
from promptkit.evals._scorer_base import (
    TAIL,
    BuiltinScorer,
    Generation,
    MatchOptions,
    Scorer,
    ScorerEnv,
    ScorerOptions,
    expected_value,
    pick,
    verdict,
)

__all__ = [
    "Generation",
    "Scorer",
    "ScorerEnv",
    "scorer",
    "scorer_types",
    "build_scorer",
    "extract_number",
    "normalize_text",
    "ENTRY_POINT_GROUP",
    "SCORERS",
    "SCORER_TYPES",
]

ENTRY_POINT_GROUP = "promptkit.scorers"

# ------------------------------------------------------------------------------------------ text scorers


def normalize_text(text: str, *, articles: bool = False) -> str:
    """Case-folded, NFKC, punctuation removed, whitespace collapsed (and a/an/the dropped when asked)."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = "".join(
        " " if unicodedata.category(ch).startswith("P") or ch in string.punctuation else ch for ch in text
    )
    words = text.split()
    if articles:
        words = [w for w in words if w not in ("a", "an", "the")]
    return " ".join(words)


_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_GSM_ANSWER = re.compile(r"####\s*(.+)")


def extract_number(text: Any) -> float | None:
    """A final numeric answer, GSM8K style: the number after the last ``####``, else the last number."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    if text is None:
        return None
    text = str(text)
    marked = _GSM_ANSWER.findall(text)
    if marked:
        found = _NUMBER.findall(marked[-1])
        if found:
            return _to_float(found[0])
    found = _NUMBER.findall(text)
    return _to_float(found[-1]) if found else None


def _to_float(token: str) -> float | None:
    cleaned = token.replace(",", "").replace("$", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


class Exact(BuiltinScorer):
    class Options(MatchOptions):
        strip: bool = True

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        actual = pick(parsed, output.text, opts.field)
        expected = expected_value(item, opts.expected_field, opts.field)
        if isinstance(actual, str) or isinstance(expected, str):
            a, e = str(actual), str(expected)
            ok = (a.strip() == e.strip()) if opts.strip else a == e
        else:
            ok = actual == expected
        value = 1.0 if ok else 0.0
        return self.score(
            value, verdict(value, opts.threshold), None if ok else f"expected {str(expected)[:200]!r}"
        )


class Normalized(BuiltinScorer):
    class Options(MatchOptions):
        articles: bool = False

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        actual = normalize_text(str(pick(parsed, output.text, opts.field)), articles=opts.articles)
        expected = normalize_text(
            str(expected_value(item, opts.expected_field, opts.field)), articles=opts.articles
        )
        value = 1.0 if actual == expected else 0.0
        return self.score(
            value, verdict(value, opts.threshold), None if value else f"expected {expected[:200]!r}"
        )


class Contains(BuiltinScorer):
    class Options(MatchOptions):
        value: str | list[str] | None = None  # fixed text(s); default: the expected value(s)
        mode: Literal["all", "any"] = "all"
        case_sensitive: bool = True

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        wanted = opts.value if opts.value is not None else expected_value(item, opts.expected_field, None)
        needles = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted]) if w is not None]
        haystack = str(pick(parsed, output.text, opts.field) or "")
        if not opts.case_sensitive:
            haystack, needles = haystack.casefold(), [n.casefold() for n in needles]
        found = [n for n in needles if n in haystack]
        ok = bool(needles) and (len(found) == len(needles) if opts.mode == "all" else bool(found))
        missing = [n for n in needles if n not in found]
        value = 1.0 if ok else 0.0
        why = None if ok else f"missing {missing[:5]!r}" if missing else "nothing to look for"
        return self.score(value, verdict(value, opts.threshold), why)


class Regex(BuiltinScorer):
    class Options(MatchOptions):
        pattern: str
        ignore_case: bool = False
        fullmatch: bool = False

        @model_validator(mode="after")
        def _compiles(self) -> Regex.Options:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
            return self

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        super().__init__(options, env)
        self.regex = re.compile(options.pattern, re.IGNORECASE if options.ignore_case else 0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        text = str(pick(parsed, output.text, opts.field) or "")
        match = self.regex.fullmatch(text.strip()) if opts.fullmatch else self.regex.search(text)
        value = 1.0 if match else 0.0
        return self.score(
            value, verdict(value, opts.threshold), None if match else f"/{opts.pattern}/ did not match"
        )


class Numeric(BuiltinScorer):
    class Options(MatchOptions):
        abs_tol: float = Field(default=1e-6, ge=0)
        rel_tol: float = Field(default=1e-9, ge=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        got = extract_number(pick(parsed, output.text, opts.field))
        want = extract_number(expected_value(item, opts.expected_field, opts.field))
        if want is None:
            raise EvalError("the expected value holds no number", location=item.location)
        ok = got is not None and math.isclose(got, want, rel_tol=opts.rel_tol, abs_tol=opts.abs_tol)
        value = 1.0 if ok else 0.0
        why = (
            None
            if ok
            else (f"got {got:g}, expected {want:g}" if got is not None else "no number in the answer")
        )
        return self.score(value, verdict(value, opts.threshold), why, extracted=got, expected=want)


class JsonSchema(BuiltinScorer):
    """Valid against ``schema`` (a JSON schema), else against the template's output type, else valid JSON."""

    class Options(ScorerOptions):
        schema_: dict[str, Any] | None = Field(default=None, alias="schema")
        threshold: float | None = 1.0

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        super().__init__(options, env)
        self.model: type[BaseModel] | None = None
        if options.schema_ is not None:
            from promptkit.prompts import schema_to_model

            try:
                self.model = schema_to_model(options.schema_, "EvalSchema", location="schema")
            except PromptkitError as exc:
                raise ValueError(exc.message) from None

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        from promptkit.generation import strip_fences

        model = self.model or output.output_model
        text = strip_fences(output.text)
        try:
            if model is None:
                json.loads(text)
            else:
                model.model_validate_json(text)
        except (ValidationError, ValueError) as exc:
            return self.score(0.0, verdict(0.0, self.options.threshold), str(exc)[:TAIL])
        return self.score(1.0, verdict(1.0, self.options.threshold))


class Latency(BuiltinScorer):
    kind = "graded"

    class Options(ScorerOptions):
        max_s: float = Field(gt=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        value = output.latency_s
        ok = value <= self.options.max_s
        return self.score(value, ok, None if ok else f"{value:.3f} s > {self.options.max_s:g} s")


class Cost(BuiltinScorer):
    kind = "graded"

    class Options(ScorerOptions):
        max_usd: float = Field(ge=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        value = output.cost_usd
        ok = value <= self.options.max_usd
        return self.score(value, ok, None if ok else f"${value:.6f} > ${self.options.max_usd:g}")


# --------------------------------------------------------------------------------------------- custom

ScoreFn = Callable[[Item, Generation, Any], "Score | float | bool | Awaitable[Score | float | bool]"]

# Custom scorers for `{type: custom, name: NAME}`: `@scorer("NAME")` and the `promptkit.scorers` entry points.
SCORERS: Registry[Any] = Registry("scorer", group=ENTRY_POINT_GROUP, error=EvalError)


def scorer(name: str) -> Callable[[Any], Any]:
    """Register a custom scorer for ``{type: custom, name: NAME}``.

    Decorate a class (built with the spec's other options as keyword arguments; its instances follow
    :class:`Scorer`) or a function ``(item, output, parsed)`` returning a Score, a number or a bool.
    """
    if not name or not isinstance(name, str):
        raise EvalError(f"a scorer name must be a non-empty string, got {name!r}", location="@scorer")

    def register(obj: Any) -> Any:
        return SCORERS.register(name, obj)

    return register


class _FunctionScorer:
    def __init__(self, name: str, fn: Any, threshold: float | None) -> None:
        self.name = name
        self.fn = fn
        self.threshold = threshold

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        result = self.fn(item, output, parsed)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Score):
            return result
        if isinstance(result, bool):
            return Score(scorer=self.name, value=float(result), passed=result)
        if isinstance(result, (int, float)):
            value = float(result)
            return Score(scorer=self.name, value=value, passed=verdict(value, self.threshold), kind="graded")
        raise EvalError(
            f"custom scorer returned {type(result).__name__}; expected a Score, a number or a bool",
            location=f"scorer {self.name!r}",
        )


def _custom_scorer(spec: Mapping[str, Any]) -> Scorer:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _FieldError("name", "a custom scorer needs name: (the name it was registered under)")
    try:
        obj = SCORERS.find(name)
    except EvalError as exc:  # an installed plugin that cannot be imported
        raise _FieldError("name", str(exc)) from None
    if obj is None:
        known = SCORERS.names()
        raise _FieldError(
            "name",
            f"no scorer registered as {name!r}{did_you_mean(name, known)} (registered: {known or 'none'})",
        )
    options = {k: v for k, v in spec.items() if k not in ("type", "name")}
    if inspect.isclass(obj):
        try:
            made = obj(**options)
        except TypeError as exc:
            raise _FieldError("name", f"cannot build scorer {name!r} with {sorted(options)}: {exc}") from None
        if not getattr(made, "name", None):
            made.name = name
        return made  # type: ignore[no-any-return]
    extra = set(options) - {"threshold"}
    if extra:
        raise _FieldError(sorted(extra)[0], f"function scorer {name!r} takes no option {sorted(extra)[0]!r}")
    return _FunctionScorer(name, obj, options.get("threshold"))


# ---------------------------------------------------------------------------------------------- building

# The built-in types; the modules of the larger ones are imported when a suite first uses them.
SCORER_TYPES: Registry[type[BuiltinScorer]] = Registry(
    "scorer type",
    builtins={
        "exact": "promptkit.evals._scorers:Exact",
        "normalized": "promptkit.evals._scorers:Normalized",
        "normalised": "promptkit.evals._scorers:Normalized",
        "contains": "promptkit.evals._scorers:Contains",
        "regex": "promptkit.evals._scorers:Regex",
        "numeric": "promptkit.evals._scorers:Numeric",
        "json_schema": "promptkit.evals._scorers:JsonSchema",
        "code_exec": "promptkit.evals._code_scorer:CodeExec",
        "judge": "promptkit.evals._judge_scorers:Judge",
        "similarity": "promptkit.evals._similarity:Similarity",
        "latency": "promptkit.evals._scorers:Latency",
        "cost": "promptkit.evals._scorers:Cost",
    },
    error=EvalError,
)


class _FieldError(Exception):
    """A scorer spec problem at ``field``; the suite loader turns it into an EvalError with the line."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


def scorer_types() -> list[str]:
    return sorted({*SCORER_TYPES.names(), "custom"})


def build_scorer(spec: Mapping[str, Any], env: ScorerEnv | None = None) -> Scorer:
    """Build a scorer from its suite spec (``{type: ..., options...}``).

    Raises ``_FieldError`` (internal, carrying the offending field) for a bad spec; use
    :func:`promptkit.evals.load_suite` for errors with file and line.
    """
    env = env or ScorerEnv()
    kind = spec.get("type")
    if kind == "custom":
        return _custom_scorer(spec)
    cls = SCORER_TYPES.find(kind)
    if cls is None:
        raise _FieldError(
            "type",
            f"unknown scorer type {kind!r}{did_you_mean(kind, scorer_types())}; use one of {', '.join(scorer_types())}",
        )
    try:
        options = cls.Options.model_validate(dict(spec))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown option for a {kind} scorer"
        raise _FieldError(loc, message) from None
    try:
        return cls(options, env)
    except ValueError as exc:
        raise _FieldError(None, str(exc)) from None
