"""The outcome matrix: for every prompt, every model's score and its cost in dollars (RouterBench's data model).

Read from a file or a folder of files (JSONL, CSV, Parquet), in either layout:

- long: one row per (prompt, model): columns ``prompt``, ``model``, ``score``, ``cost`` and optionally
  ``answer``, ``domain``, ``id``;
- wide (what RouterBench publishes): one row per prompt with a ``<model>`` score column and a
  ``<model>|total_cost`` column per model, optionally ``<model>|model_response``; ``eval_name`` names the
  benchmark and ``sample_id`` the prompt.

``columns`` maps these names to the file's own (``{"prompt": "question", "domain": "task"}``). Without a domain
column, a file's domain is its name without the extension. RouteLLM's two-model data is one more source
(``outcomes_from_routellm``), with estimated dollar costs.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.errors import EvalError, file_location

if TYPE_CHECKING:
    import numpy as np

    from promptkit.evals.routing._routellm import RouteLLMData

__all__ = [
    "COLUMNS",
    "OUTCOME_SUFFIXES",
    "ROUTELLM_PRICES_PER_MTOK",
    "OutcomeMatrix",
    "load_outcomes",
    "outcomes_from_routellm",
]

COLUMNS = ("prompt", "model", "score", "cost", "answer", "domain", "id")
OUTCOME_SUFFIXES = (".jsonl", ".csv", ".parquet")
_COST_SUFFIX = "|total_cost"
_ANSWER_SUFFIX = "|model_response"
# Wide files: these optional columns have RouterBench's names unless mapped.
_WIDE_DEFAULTS = {"domain": "eval_name", "id": "sample_id"}
# The prices RouteLLM's authors use for their two models (dollars per million tokens, input and output blended).
ROUTELLM_PRICES_PER_MTOK = {"mistralai/Mixtral-8x7B-Instruct-v0.1": 0.24, "gpt-4-1106-preview": 24.7}


@dataclass
class OutcomeMatrix:
    """``scores[i, j]``/``costs[i, j]``: model ``j``'s score on prompt ``i`` and what that call cost (dollars)."""

    models: list[str]
    prompts: list[str]
    scores: np.ndarray
    costs: np.ndarray
    domains: list[str]
    ids: list[str]
    source: str
    answers: list[list[str | None]] | None = None
    cost_note: str = "recorded"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def binary(self) -> bool:
        import numpy as np

        return bool(np.isin(self.scores, (0.0, 1.0)).all())

    def subset(self, indices: Sequence[int] | np.ndarray) -> OutcomeMatrix:
        idx = [int(i) for i in indices]
        return OutcomeMatrix(
            models=list(self.models),
            prompts=[self.prompts[i] for i in idx],
            scores=self.scores[idx],
            costs=self.costs[idx],
            domains=[self.domains[i] for i in idx],
            ids=[self.ids[i] for i in idx],
            source=self.source,
            answers=[self.answers[i] for i in idx] if self.answers is not None else None,
            cost_note=self.cost_note,
            meta=dict(self.meta),
        )

    def sample(self, limit: int | None, seed: int = 0) -> OutcomeMatrix:
        """A seeded random sample of ``limit`` prompts (all of them when ``limit`` is None or larger)."""
        import numpy as np

        if limit is None or limit >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), size=limit, replace=False)))

    def summary(self) -> dict[str, Any]:
        domains: dict[str, int] = {}
        for d in self.domains:
            domains[d] = domains.get(d, 0) + 1
        return {
            "source": self.source,
            "prompts": len(self),
            "models": [
                {
                    "model": m,
                    "quality": float(self.scores[:, j].mean()),
                    "cost_usd": float(self.costs[:, j].mean()),
                }
                for j, m in enumerate(self.models)
            ],
            "domains": domains,
            "binary": self.binary,
            "cost_note": self.cost_note,
            **self.meta,
        }


# -- reading ----------------------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, record) for every record of one file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise EvalError(
                            f"bad JSON: {exc.msg}", location=file_location(path, line_no)
                        ) from None
                    if not isinstance(record, dict):
                        raise EvalError("expected a JSON object", location=file_location(path, line_no))
                    yield line_no, record
        elif suffix == ".csv":
            csv.field_size_limit(1 << 30)
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                for record in reader:
                    yield reader.line_num, record
        elif suffix == ".parquet":
            yield from _parquet_rows(path)
        else:
            raise EvalError(
                f"unsupported file type {suffix!r}; expected one of {list(OUTCOME_SUFFIXES)}",
                location=str(path),
            )
    except OSError as exc:
        raise EvalError(f"cannot read: {exc.strerror}", location=str(path)) from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        table = pq.read_table(path)
        for n, record in enumerate(table.to_pylist(), start=1):
            yield n, record
        return
    try:
        import pandas as pd
    except ImportError:
        raise EvalError(
            "reading Parquet needs pyarrow or pandas (pip install pyarrow); or convert the file to JSONL/CSV",
            location=str(path),
        ) from None
    frame = pd.read_parquet(path)
    for n, record in enumerate(frame.to_dict(orient="records"), start=1):
        yield n, record


def _header(path: Path) -> list[str]:
    """The file's column names (JSONL: the first record's keys)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                return next(csv.reader(handle), [])
        except OSError as exc:
            raise EvalError(f"cannot read: {exc.strerror}", location=str(path)) from None
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        except ImportError:
            pass
    for _, record in _rows(path):
        return list(record)
    return []


def _number(value: Any, path: Path, line: int, column: str, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        text = value.strip()
        if text in ("True", "true"):
            return 1.0
        if text in ("False", "false"):
            return 0.0
        try:
            number = float(text)
        except ValueError:
            raise EvalError(
                f"{what} must be a number, got {text[:40]!r}", location=file_location(path, line, column)
            ) from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise EvalError(
            f"{what} must be a number, got {type(value).__name__}", location=file_location(path, line, column)
        )
    if not math.isfinite(number):
        raise EvalError(f"{what} is missing or not finite", location=file_location(path, line, column))
    if what == "cost" and number < 0:
        raise EvalError(f"cost must be >= 0, got {number}", location=file_location(path, line, column))
    return number


@dataclass
class _Cell:
    score: float
    cost: float
    answer: str | None


@dataclass
class _Prompt:
    text: str
    domain: str
    where: str
    cells: dict[str, _Cell] = field(default_factory=dict)


def _text(
    record: Mapping[str, Any], column: str | None, path: Path, line: int, *, required: bool
) -> str | None:
    if column is None:
        return None
    value = record.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise EvalError("missing value", location=file_location(path, line, column))
        return None
    return str(value)


def _read_file(
    path: Path, columns: Mapping[str, str], prompts: dict[str, _Prompt], order: list[str], models: list[str]
) -> None:
    header = _header(path)
    if not header:
        raise EvalError("no rows", location=str(path))
    name = {c: columns.get(c, c) for c in COLUMNS}
    wide_models = [c[: -len(_COST_SUFFIX)] for c in header if c.endswith(_COST_SUFFIX)]
    for canonical in ("prompt",):
        if name[canonical] not in header:
            raise EvalError(
                f"missing column {name[canonical]!r} (the {canonical}; map another with --column "
                f"{canonical}=NAME); columns: {header[:12]}",
                location=file_location(path, 1, name[canonical]),
            )
    long = name["model"] in header
    if not long and not wide_models:
        raise EvalError(
            f"neither layout: a long file needs columns {name['prompt']!r}, {name['model']!r}, "
            f"{name['score']!r}, {name['cost']!r}; a wide one '<model>' and '<model>{_COST_SUFFIX}' columns",
            location=file_location(path, 1, name["model"]),
        )
    if long:
        for canonical in ("score", "cost"):
            if name[canonical] not in header:
                raise EvalError(
                    f"missing column {name[canonical]!r} (the {canonical}; map another with --column "
                    f"{canonical}=NAME)",
                    location=file_location(path, 1, name[canonical]),
                )
    else:
        for model in wide_models:
            if model not in header:
                raise EvalError(
                    f"column {model + _COST_SUFFIX!r} has no score column {model!r}",
                    location=file_location(path, 1, model),
                )
        for canonical, default in _WIDE_DEFAULTS.items():
            if canonical not in columns and name[canonical] not in header:
                name[canonical] = default
    domain_col = name["domain"] if name["domain"] in header else None
    id_col = name["id"] if name["id"] in header else None
    answer_col = name["answer"] if name["answer"] in header else None
    for canonical in ("domain", "id", "answer"):
        if canonical in columns and columns[canonical] not in header:
            raise EvalError(
                f"missing column {columns[canonical]!r} (mapped from {canonical})",
                location=file_location(path, 1, columns[canonical]),
            )
    for line, record in _rows(path):
        text = _text(record, name["prompt"], path, line, required=True)
        assert text is not None
        domain = _text(record, domain_col, path, line, required=False) or path.stem
        ident = _text(record, id_col, path, line, required=False)
        key = f"{domain}\x00{ident if ident is not None else text}"
        entry = prompts.get(key)
        if entry is None:
            entry = prompts[key] = _Prompt(text, domain, file_location(path, line))
            order.append(key)
        if long:
            model = _text(record, name["model"], path, line, required=True)
            assert model is not None
            cells = [
                (
                    model,
                    _number(record.get(name["score"]), path, line, name["score"], "score"),
                    _number(record.get(name["cost"]), path, line, name["cost"], "cost"),
                    _text(record, answer_col, path, line, required=False),
                )
            ]
        else:
            cells = [
                (
                    model,
                    _number(record.get(model), path, line, model, "score"),
                    _number(record.get(model + _COST_SUFFIX), path, line, model + _COST_SUFFIX, "cost"),
                    _text(record, model + _ANSWER_SUFFIX, path, line, required=False)
                    if model + _ANSWER_SUFFIX in header
                    else None,
                )
                for model in wide_models
            ]
        for model, score, cost, answer in cells:
            if model in entry.cells:
                raise EvalError(
                    f"a second outcome of model {model!r} for this prompt (first at {entry.where})",
                    location=file_location(path, line),
                )
            if model not in models:
                models.append(model)
            entry.cells[model] = _Cell(score, cost, answer)


def load_outcomes(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> OutcomeMatrix:
    """Read an outcome matrix from a file or from every JSONL/CSV/Parquet file in a folder (sorted by name).

    Every prompt needs an outcome for every model; a gap is an error naming the prompt's file and line.
    """
    import numpy as np

    mapping = dict(columns or {})
    bad = sorted(set(mapping) - set(COLUMNS))
    if bad:
        raise EvalError(
            f"unknown column role(s) {bad}; expected some of {list(COLUMNS)}", location="--column"
        )
    source = Path(path)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in OUTCOME_SUFFIXES)
        if not files:
            raise EvalError(
                f"no outcome files ({', '.join(OUTCOME_SUFFIXES)}) in the folder", location=str(source)
            )
    elif source.is_file():
        files = [source]
    else:
        raise EvalError("outcome data not found", location=str(source))
    prompts: dict[str, _Prompt] = {}
    order: list[str] = []
    models: list[str] = []
    for file in files:
        _read_file(file, mapping, prompts, order, models)
    if len(models) < 2:
        raise EvalError(f"routing needs at least two models, found {models}", location=str(source))
    scores = np.empty((len(order), len(models)))
    costs = np.empty((len(order), len(models)))
    answers: list[list[str | None]] = []
    for i, key in enumerate(order):
        entry = prompts[key]
        missing = [m for m in models if m not in entry.cells]
        if missing:
            raise EvalError(f"this prompt has no outcome for model(s) {missing}", location=entry.where)
        row = []
        for j, m in enumerate(models):
            cell = entry.cells[m]
            scores[i, j], costs[i, j] = cell.score, cell.cost
            row.append(cell.answer)
        answers.append(row)
    has_answers = any(a is not None for row in answers for a in row)
    matrix = OutcomeMatrix(
        models=models,
        prompts=[prompts[k].text for k in order],
        scores=scores,
        costs=costs,
        domains=[prompts[k].domain for k in order],
        ids=[k.replace("\x00", ":") for k in order],
        source=str(source),
        answers=answers if has_answers else None,
    )
    return matrix.sample(limit, seed)


def _tokens(text: str) -> float:
    # About 4 characters per token for English text: an estimate, and said to be one wherever it is used.
    return len(text) / 4.0


def outcomes_from_routellm(
    data: RouteLLMData, prices_per_mtok: Mapping[str, float] | None = None
) -> OutcomeMatrix:
    """RouteLLM's two-model outcomes as a matrix, with dollar costs estimated from the text.

    RouteLLM records no token counts: each call is priced at the model's dollars per million tokens times
    (prompt + the weak model's recorded answer, where there is one) / 4 characters per token, the same length
    for both models. MMLU records no answers, so its cost counts the prompt only.
    """
    import numpy as np

    from promptkit.evals.routing._routellm import STRONG_MODEL, WEAK_MODEL

    prices = dict(ROUTELLM_PRICES_PER_MTOK if prices_per_mtok is None else prices_per_mtok)
    missing = [m for m in (WEAK_MODEL, STRONG_MODEL) if m not in prices]
    if missing:
        raise EvalError(f"no price for {missing}", location="prices")
    answers = data.weak_answers
    tokens = np.asarray(
        [
            _tokens(p) + (_tokens(answers[i]) if answers is not None else 0.0)
            for i, p in enumerate(data.prompts)
        ]
    )
    models = [WEAK_MODEL, STRONG_MODEL]
    costs = np.stack([tokens * prices[m] / 1e6 for m in models], axis=1)
    return OutcomeMatrix(
        models=models,
        prompts=list(data.prompts),
        scores=np.stack([data.weak, data.strong], axis=1),
        costs=costs,
        # MMLU's subjects and MT-Bench's categories: what cross-domain evaluation holds out.
        domains=list(data.groups) or [data.benchmark] * len(data),
        ids=list(data.ids) or [str(i) for i in range(len(data))],
        source=str(data.source),
        answers=[[a, None] for a in answers] if answers is not None else None,
        cost_note=(
            "estimated: RouteLLM's prices ($/M tokens: "
            + ", ".join(f"{m.split('/')[-1]} {prices[m]}" for m in models)
            + ") x (prompt"
            + (" + weak answer" if answers is not None else "")
            + ") at 4 characters per token"
        ),
        meta={"benchmark": data.benchmark, "excluded_contaminated": data.excluded},
    )
