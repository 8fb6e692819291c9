"""Scorers: each turns one model output into a :class:`~promptkit.evals._log.Score`.

A scorer is any object with a ``name`` and ``async __call__(item, output, parsed) -> Score``: ``item`` is
the dataset :class:`Item`, ``output`` the :class:`Generation` (raw text plus latency, cost and tokens) and
``parsed`` the structured output as JSON-able data (the text for free-text templates).

Built-in types: exact, normalized, contains, regex, numeric, json_schema, code_exec, judge, similarity,
latency, cost, and custom (registered with ``@scorer("name")`` or the ``promptkit.scorers`` entry points).
Pass/fail scorers threshold at 1 unless told otherwise (``threshold: null`` turns the verdict off).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import math
import re
import string
import sys
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promptkit.errors import EvalError, PromptkitError
from promptkit.evals._dataset import Item, get_field
from promptkit.evals._log import Score
from promptkit.execution._code_answers import build_program, extract_code

__all__ = [
    "Generation",
    "Scorer",
    "ScorerEnv",
    "scorer",
    "scorer_types",
    "build_scorer",
    "extract_number",
    "normalize_text",
    "extract_code",
    "build_program",
    "PairwiseJudge",
    "PairwiseVerdict",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "promptkit.scorers"
_TAIL = 600  # characters of a traceback kept in a Score's rationale


@dataclass(frozen=True)
class Generation:
    """One model answer and what it cost; what scorers see besides the item and the parsed output."""

    text: str
    model: str = ""
    variant: str = ""
    repeat: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    output_model: type[BaseModel] | None = None


@runtime_checkable
class Scorer(Protocol):
    name: str

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score: ...


@dataclass
class ScorerEnv:
    """What model-backed scorers (the judge) need from the run: backend overrides, cache and ledger."""

    backends: Mapping[str, Any] = field(default_factory=dict)
    cache: Any = True
    ledger: Any = True
    run_id: str | None = None
    base_dir: Path | None = None

    def model(self, spec: str) -> Any:
        return self.backends.get(spec, spec)


# ----------------------------------------------------------------------------------------------- helpers


def _verdict(value: float, threshold: float | None) -> bool | None:
    return None if threshold is None else value >= threshold


def _pick(parsed: Any, text: str, name: str | None) -> Any:
    """The compared value: the whole text, or one field of the structured output."""
    if name is None:
        return text
    if isinstance(parsed, Mapping):
        try:
            return get_field(dict(parsed), name)
        except KeyError:
            return None
    return None


def _expected(item: Item, expected_field: str | None, name: str | None) -> Any:
    if expected_field is not None:
        try:
            return get_field(item.row, expected_field)
        except KeyError:
            raise EvalError(f"the item has no field {expected_field!r}", location=item.location) from None
    value = item.expected
    if name is not None and isinstance(value, Mapping) and name in value:
        return value[name]
    return value


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


# ------------------------------------------------------------------------------------------ base classes


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    name: str | None = None


class _Builtin:
    """A built-in scorer: validated options, a name and the Score it builds."""

    Options: ClassVar[type[_Options]]
    kind: ClassVar[Literal["binary", "graded"]] = "binary"

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        self.options = options
        self.env = env
        self.name: str = options.name or options.type

    def score(self, value: float, passed: bool | None, rationale: str | None = None, **meta: Any) -> Score:
        return Score(
            scorer=self.name, value=value, passed=passed, kind=self.kind, rationale=rationale, meta=meta
        )

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:  # pragma: no cover
        raise NotImplementedError


class _MatchOptions(_Options):
    field: str | None = None  # a field of the structured output (and of a dict expected value)
    expected_field: str | None = None  # compare against this dataset column instead of `expected`
    threshold: float | None = 1.0


class Exact(_Builtin):
    class Options(_MatchOptions):
        strip: bool = True

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        actual = _pick(parsed, output.text, opts.field)
        expected = _expected(item, opts.expected_field, opts.field)
        if isinstance(actual, str) or isinstance(expected, str):
            a, e = str(actual), str(expected)
            ok = (a.strip() == e.strip()) if opts.strip else a == e
        else:
            ok = actual == expected
        value = 1.0 if ok else 0.0
        return self.score(
            value, _verdict(value, opts.threshold), None if ok else f"expected {str(expected)[:200]!r}"
        )


class Normalized(_Builtin):
    class Options(_MatchOptions):
        articles: bool = False

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        actual = normalize_text(str(_pick(parsed, output.text, opts.field)), articles=opts.articles)
        expected = normalize_text(
            str(_expected(item, opts.expected_field, opts.field)), articles=opts.articles
        )
        value = 1.0 if actual == expected else 0.0
        return self.score(
            value, _verdict(value, opts.threshold), None if value else f"expected {expected[:200]!r}"
        )


class Contains(_Builtin):
    class Options(_MatchOptions):
        value: str | list[str] | None = None  # fixed text(s); default: the expected value(s)
        mode: Literal["all", "any"] = "all"
        case_sensitive: bool = True

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        wanted = opts.value if opts.value is not None else _expected(item, opts.expected_field, None)
        needles = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted]) if w is not None]
        haystack = str(_pick(parsed, output.text, opts.field) or "")
        if not opts.case_sensitive:
            haystack, needles = haystack.casefold(), [n.casefold() for n in needles]
        found = [n for n in needles if n in haystack]
        ok = bool(needles) and (len(found) == len(needles) if opts.mode == "all" else bool(found))
        missing = [n for n in needles if n not in found]
        value = 1.0 if ok else 0.0
        why = None if ok else f"missing {missing[:5]!r}" if missing else "nothing to look for"
        return self.score(value, _verdict(value, opts.threshold), why)


class Regex(_Builtin):
    class Options(_MatchOptions):
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
        text = str(_pick(parsed, output.text, opts.field) or "")
        match = self.regex.fullmatch(text.strip()) if opts.fullmatch else self.regex.search(text)
        value = 1.0 if match else 0.0
        return self.score(
            value, _verdict(value, opts.threshold), None if match else f"/{opts.pattern}/ did not match"
        )


class Numeric(_Builtin):
    class Options(_MatchOptions):
        abs_tol: float = Field(default=1e-6, ge=0)
        rel_tol: float = Field(default=1e-9, ge=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        got = extract_number(_pick(parsed, output.text, opts.field))
        want = extract_number(_expected(item, opts.expected_field, opts.field))
        if want is None:
            raise EvalError("the expected value holds no number", location=item.location)
        ok = got is not None and math.isclose(got, want, rel_tol=opts.rel_tol, abs_tol=opts.abs_tol)
        value = 1.0 if ok else 0.0
        why = (
            None
            if ok
            else (f"got {got:g}, expected {want:g}" if got is not None else "no number in the answer")
        )
        return self.score(value, _verdict(value, opts.threshold), why, extracted=got, expected=want)


class JsonSchema(_Builtin):
    """Valid against ``schema`` (a JSON schema), else against the template's output type, else valid JSON."""

    class Options(_Options):
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
            return self.score(0.0, _verdict(0.0, self.options.threshold), str(exc)[:_TAIL])
        return self.score(1.0, _verdict(1.0, self.options.threshold))


# One sandbox semaphore per event loop: an asyncio.Semaphore cannot be shared between loops.
_SANDBOX_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_slots_lock = threading.Lock()


def _sandbox_slots(size: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    with _slots_lock:
        found = _SANDBOX_SLOTS.get(loop)
        if found is None:
            found = _SANDBOX_SLOTS[loop] = asyncio.Semaphore(size)
    return found


def _default_parallel() -> int:
    import os

    return max(2, 2 * (os.cpu_count() or 1))


class CodeExec(_Builtin):
    """Run prompt + completion + tests in the sandbox; 1 when the program exits cleanly, else 0.

    ``k`` lists the pass@k values the runner reports over ``repeats`` samples per problem.
    """

    class Options(_Options):
        field: str | None = None  # the structured output field holding the code
        prompt_field: str | None = None  # dataset column prepended to the completion (HumanEval's `prompt`)
        tests_field: str = "test"
        entry_point_field: str | None = "entry_point"
        k: list[int] = Field(default_factory=lambda: [1])
        timeout_s: float = Field(default=10.0, gt=0)
        memory_mb: int = Field(default=512, ge=16)
        max_parallel: int = Field(default_factory=_default_parallel, ge=1)
        threshold: float | None = 1.0

        @model_validator(mode="after")
        def _positive_k(self) -> CodeExec.Options:
            if not self.k or any(k < 1 for k in self.k):
                raise ValueError("k must be a non-empty list of integers >= 1")
            return self

    @property
    def ks(self) -> list[int]:
        return list(self.options.k)

    def program(self, item: Item, output: Generation, parsed: Any) -> str:
        opts = self.options
        row = item.row

        def column(name: str | None, required: bool) -> Any:
            if name is None:
                return None
            try:
                return get_field(row, name)
            except KeyError:
                if required:
                    raise EvalError(
                        f"the item has no field {name!r}", location=f"{item.location}: {name}"
                    ) from None
                return None

        entry = column(opts.entry_point_field, False)
        tests = column(opts.tests_field, True)
        if isinstance(tests, list):  # MBPP: a list of assert statements
            tests = "\n".join(str(t) for t in tests)
        raw = _pick(parsed, output.text, opts.field) if opts.field else output.text
        code = extract_code(str(raw or ""), str(entry) if entry else None)
        prompt = column(opts.prompt_field, True)
        return build_program(code, prompt=prompt, test=str(tests), entry_point=str(entry) if entry else None)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        from promptkit.execution import Limits, arun_sandboxed

        program = self.program(item, output, parsed)
        limits = Limits(
            wall_s=self.options.timeout_s, cpu_s=self.options.timeout_s, memory_mb=self.options.memory_mb
        )
        async with _sandbox_slots(self.options.max_parallel):
            with tempfile.TemporaryDirectory(prefix="promptkit-eval-") as folder:
                Path(folder, "program.py").write_text(program, encoding="utf-8")
                result = await arun_sandboxed(
                    [sys.executable, "-I", "program.py"], cwd=Path(folder), limits=limits
                )
        value = 1.0 if result.ok else 0.0
        why = None
        if not result.ok:
            why = (
                f"killed: {result.killed_reason}"
                if result.killed_reason
                else (result.stderr or result.stdout)[-_TAIL:]
            )
        return self.score(
            value,
            _verdict(value, self.options.threshold),
            why,
            returncode=result.returncode,
            killed_reason=result.killed_reason,
            wall_s=round(result.wall_s, 4),
        )


class _Grade(BaseModel):
    rationale: str
    grade: int


_bounded_judges: dict[tuple[str, int, int], Any] = {}
_bounded_lock = threading.Lock()


def bounded_judge_template(template: Any, lo: int, hi: int) -> Any:
    """``template`` (a judge Template) answering with ``grade`` bounded to ``[lo, hi]`` in its output schema.

    The bounds in the schema are what a grammar-constrained local model cannot leave and what validation
    re-asks a remote one about. Examples graded on another scale are moved onto this one (linearly, from
    the scale their own inputs give). A template whose output has no integer ``grade`` is returned as is.
    """
    from promptkit.errors import ExampleError
    from promptkit.prompts._schema import schema_to_model

    schema = template.output_schema
    if schema is None and template.output_model is not None:
        schema = template.output_model.model_json_schema()
    grade = (schema or {}).get("properties", {}).get("grade")
    if not isinstance(grade, dict) or grade.get("type") != "integer":
        return template
    key = (template.hash, lo, hi)
    with _bounded_lock:
        found = _bounded_judges.get(key)
    if found is not None:
        return found
    bounded = json.loads(json.dumps(schema))
    bounded["properties"]["grade"].update(minimum=lo, maximum=hi)
    model = schema_to_model(bounded, f"{template.name}_grade_{lo}_{hi}".replace("-", "m"))
    try:
        found = template.with_output(model)
    except ExampleError:
        found = _rescaled(template, lo, hi).with_output(model)
    with _bounded_lock:
        return _bounded_judges.setdefault(key, found)


def _rescaled(template: Any, lo: int, hi: int) -> Any:
    """The template re-read from its file with every example's grade moved onto ``[lo, hi]``."""
    from promptkit.prompts import Template
    from promptkit.prompts._yaml import load_yaml

    source = template.source
    where = f"template {template.name!r}"
    if not source or not Path(source).is_file():
        raise EvalError(f"its examples are graded outside the scale [{lo}, {hi}]", location=where)
    data, _ = load_yaml(Path(source).read_text(encoding="utf-8"), source)
    for example in data.get("examples") or []:
        inputs, output = example.get("inputs") or {}, example.get("output") or {}
        own_lo, own_hi = inputs.get("scale_min", 1), inputs.get("scale_max", 10)
        if not isinstance(output.get("grade"), int) or own_hi <= own_lo:
            raise EvalError(f"cannot move its examples onto the scale [{lo}, {hi}]", location=where)
        output["grade"] = round(lo + (output["grade"] - own_lo) * (hi - lo) / (own_hi - own_lo))
        inputs.update(scale_min=lo, scale_max=hi)
    return Template.from_dict(data, source)


class Judge(_Builtin):
    """LLM-as-judge: a grade on ``scale`` for the rubric, with a rationale, through ``generate``.

    The judge template's output schema carries the scale (``bounded_judge_template``), so a grade off the
    scale is never accepted: a local model's grammar cannot write one, a remote model is asked again.
    """

    kind = "graded"

    class Options(_Options):
        rubric: str = Field(min_length=1)
        model: str
        scale: tuple[int, int] = (1, 10)
        threshold: float | None = None
        template: str = "judge_grade"
        field: str | None = None
        reference: bool = True  # show the expected answer to the judge when the item has one
        max_attempts: int = Field(default=2, ge=1)

        @model_validator(mode="after")
        def _scale(self) -> Judge.Options:
            lo, hi = self.scale
            if lo >= hi:
                raise ValueError(f"scale must be [low, high] with low < high, got {list(self.scale)}")
            return self

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        from promptkit.generation import agenerate

        opts = self.options
        lo, hi = opts.scale
        answer = _pick(parsed, output.text, opts.field) if opts.field else output.text
        reference = item.expected if opts.reference else None

        def in_scale(out: Any) -> bool | str:
            grade = out["grade"] if isinstance(out, Mapping) else getattr(out, "grade", None)
            return (
                True
                if isinstance(grade, int) and lo <= grade <= hi
                else f"grade must be an integer from {lo} to {hi}"
            )

        from promptkit.generation._defaults import template_for

        result = await agenerate(
            bounded_judge_template(template_for(opts.template), lo, hi),
            {
                "rubric": opts.rubric,
                "task": _as_text(item.inputs),
                "answer": _as_text(answer),
                "reference": None if reference is None else _as_text(reference),
                "scale_min": lo,
                "scale_max": hi,
            },
            model=self.env.model(opts.model),
            accept=in_scale,
            cache=self.env.cache,
            ledger=self.env.ledger,
            run_id=self.env.run_id,
            max_attempts=opts.max_attempts,
            temperature=0.0,
        )
        grade = float(_field_of(result.output, "grade"))
        return self.score(
            grade,
            _verdict(grade, opts.threshold),
            str(_field_of(result.output, "rationale")),
            judge=result.model,
            judge_cost_usd=result.cost_usd,
        )


def _field_of(output: Any, name: str) -> Any:
    return output[name] if isinstance(output, Mapping) else getattr(output, name)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


class Similarity(_Builtin):
    """Cosine similarity of the answer and the expected text: lexical TF-IDF or an Embedder."""

    kind = "graded"

    class Options(_MatchOptions):
        method: Literal["lexical", "embedding"] = "lexical"
        embedder: str | None = None  # "package.module:attr": an Embedder, or a class/factory making one
        threshold: float | None = 0.8

        @model_validator(mode="after")
        def _embedder(self) -> Similarity.Options:
            if self.method == "embedding" and not self.embedder:
                raise ValueError("method 'embedding' needs embedder: 'package.module:attr'")
            return self

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        super().__init__(options, env)
        self._embedder: Any = None

    def embedder(self) -> Any:
        if self._embedder is None:
            if self.options.method == "lexical":
                from promptkit.prompts import LexicalEmbedder

                self._embedder = LexicalEmbedder()
            else:
                found = _import_object(self.options.embedder, "embedder")
                self._embedder = found() if inspect.isclass(found) or not hasattr(found, "embed") else found
        return self._embedder

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        a = _as_text(_pick(parsed, output.text, opts.field) or "")
        b = _as_text(_expected(item, opts.expected_field, opts.field) or "")
        vectors = await asyncio.to_thread(self.embedder().embed, [a, b])
        value = max(0.0, min(1.0, _cosine(vectors[0], vectors[1])))
        return self.score(value, _verdict(value, opts.threshold))


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class Latency(_Builtin):
    kind = "graded"

    class Options(_Options):
        max_s: float = Field(gt=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        value = output.latency_s
        ok = value <= self.options.max_s
        return self.score(value, ok, None if ok else f"{value:.3f} s > {self.options.max_s:g} s")


class Cost(_Builtin):
    kind = "graded"

    class Options(_Options):
        max_usd: float = Field(ge=0)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        value = output.cost_usd
        ok = value <= self.options.max_usd
        return self.score(value, ok, None if ok else f"${value:.6f} > ${self.options.max_usd:g}")


# --------------------------------------------------------------------------------------------- custom

ScoreFn = Callable[[Item, Generation, Any], "Score | float | bool | Awaitable[Score | float | bool]"]
_custom: dict[str, Any] = {}
_custom_lock = threading.Lock()


def scorer(name: str) -> Callable[[Any], Any]:
    """Register a custom scorer for ``{type: custom, name: NAME}``.

    Decorate a class (built with the spec's other options as keyword arguments; its instances follow
    :class:`Scorer`) or a function ``(item, output, parsed)`` returning a Score, a number or a bool.
    """
    if not name or not isinstance(name, str):
        raise EvalError(f"a scorer name must be a non-empty string, got {name!r}", location="@scorer")

    def register(obj: Any) -> Any:
        with _custom_lock:
            _custom[name] = obj
        return obj

    return register


def _import_object(ref: str | None, what: str) -> Any:
    module, _, attr = (ref or "").partition(":")
    if not module or not attr:
        raise EvalError(f"{what} must be 'package.module:attr', got {ref!r}")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise EvalError(f"cannot import {what} {ref!r}: {exc}") from None
    return obj


def _lookup_custom(name: str) -> Any:
    found = _custom.get(name)
    if found is not None:
        return found
    try:
        points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken distribution must not hide the built-ins
        points = ()  # type: ignore[assignment]
    for point in points:
        if point.name == name:
            try:
                obj = point.load()
            except Exception as exc:
                raise EvalError(f"scorer entry point {name!r} failed to load: {exc}") from None
            with _custom_lock:
                _custom[name] = obj
            return obj
    return None


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
            return Score(scorer=self.name, value=value, passed=_verdict(value, self.threshold), kind="graded")
        raise EvalError(
            f"custom scorer returned {type(result).__name__}; expected a Score, a number or a bool",
            location=f"scorer {self.name!r}",
        )


def _custom_scorer(spec: Mapping[str, Any]) -> Scorer:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _FieldError("name", "a custom scorer needs name: (the name it was registered under)")
    obj = _lookup_custom(name)
    if obj is None:
        known = sorted(_custom)
        raise _FieldError("name", f"no scorer registered as {name!r} (registered: {known or 'none'})")
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

_TYPES: dict[str, type[_Builtin]] = {
    "exact": Exact,
    "normalized": Normalized,
    "normalised": Normalized,
    "contains": Contains,
    "regex": Regex,
    "numeric": Numeric,
    "json_schema": JsonSchema,
    "code_exec": CodeExec,
    "judge": Judge,
    "similarity": Similarity,
    "latency": Latency,
    "cost": Cost,
}


class _FieldError(Exception):
    """A scorer spec problem at ``field``; the suite loader turns it into an EvalError with the line."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


def scorer_types() -> list[str]:
    return sorted({*_TYPES, "custom"})


def build_scorer(spec: Mapping[str, Any], env: ScorerEnv | None = None) -> Scorer:
    """Build a scorer from its suite spec (``{type: ..., options...}``).

    Raises ``_FieldError`` (internal, carrying the offending field) for a bad spec; use
    :func:`promptkit.evals.load_suite` for errors with file and line.
    """
    env = env or ScorerEnv()
    kind = spec.get("type")
    if kind == "custom":
        return _custom_scorer(spec)
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _FieldError("type", f"unknown scorer type {kind!r}; use one of {', '.join(scorer_types())}")
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


# -------------------------------------------------------------------------------------------- pairwise


class _Preference(BaseModel):
    rationale: str
    winner: Literal["first", "second", "tie"]


class PairwiseVerdict(BaseModel):
    """Both orders of one pairwise comparison: ``winner`` is ``a``/``b`` only when the two orders agree."""

    winner: Literal["a", "b", "tie"]
    agree: bool
    order_ab: Literal["a", "b", "tie"]  # the verdict with A shown first
    order_ba: Literal["a", "b", "tie"]  # the verdict with B shown first
    rationale_ab: str = ""
    rationale_ba: str = ""
    cost_usd: float = 0.0
    judge: str = ""  # the model that answered; "x / y" when a router sent the two orders to different ones


class PairwiseJudge:
    """Compare two answers to one task, asking twice with the order swapped to cancel position bias.

    The verdict is the agreed winner; when the orders disagree (a position-biased judge) it is a tie.
    ``agreement_rate(verdicts)`` reports how often the two orders agreed.
    """

    def __init__(
        self,
        model: Any,
        rubric: str,
        *,
        template: str = "judge_pairwise",
        cache: Any = True,
        ledger: Any = True,
        run_id: str | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.model = model
        self.rubric = rubric
        self.template = template
        self.cache = cache
        self.ledger = ledger
        self.run_id = run_id
        self.max_attempts = max_attempts

    async def _ask(
        self, task: str, first: str, second: str, reference: str | None, limit: asyncio.Semaphore | None
    ) -> tuple[str, str, float, str]:
        from promptkit.generation import agenerate

        async with limit or contextlib.nullcontext():
            result = await agenerate(
                self.template,
                {
                    "rubric": self.rubric,
                    "task": task,
                    "first": first,
                    "second": second,
                    "reference": reference,
                },
                model=self.model,
                cache=self.cache,
                ledger=self.ledger,
                run_id=self.run_id,
                max_attempts=self.max_attempts,
                temperature=0.0,
            )
        return (
            str(_field_of(result.output, "winner")),
            str(_field_of(result.output, "rationale")),
            result.cost_usd,
            result.model,
        )

    async def compare(
        self,
        inputs: Any,
        answer_a: str,
        answer_b: str,
        *,
        reference: Any = None,
        limit: asyncio.Semaphore | None = None,
    ) -> PairwiseVerdict:
        """Ask with A first and with B first (concurrently); ``limit`` bounds the calls in flight."""
        task = _as_text(inputs)
        ref = None if reference is None else _as_text(reference)
        (w1, r1, c1, m1), (w2, r2, c2, m2) = await asyncio.gather(
            self._ask(task, answer_a, answer_b, ref, limit), self._ask(task, answer_b, answer_a, ref, limit)
        )
        ab = {"first": "a", "second": "b", "tie": "tie"}[w1]
        ba = {"first": "b", "second": "a", "tie": "tie"}[w2]
        agree = ab == ba
        return PairwiseVerdict(
            winner=ab if agree else "tie",  # type: ignore[arg-type]
            agree=agree,
            order_ab=ab,  # type: ignore[arg-type]
            order_ba=ba,  # type: ignore[arg-type]
            rationale_ab=r1,
            rationale_ba=r2,
            cost_usd=c1 + c2,
            judge=m1 if m1 == m2 else f"{m1} / {m2}",
        )

    @staticmethod
    def agreement_rate(verdicts: list[PairwiseVerdict]) -> float:
        if not verdicts:
            raise EvalError("no pairwise verdicts to summarise", location="PairwiseJudge.agreement_rate")
        return sum(v.agree for v in verdicts) / len(verdicts)
