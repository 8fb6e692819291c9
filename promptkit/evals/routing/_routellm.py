"""RouteLLM's recorded outcomes (lm-sys/RouteLLM evals data), loaded the way its paper evaluates them.

One row per routed query: the prompt the router sees, the weak and strong model's quality on it, and (where
the data holds it) the weak model's answer text, which cascades may read. MT-Bench queries are questions:
routed on the first turn, both turns served by the routed model, quality = mean GPT-4 grade of the two turns.
The judge's grades are labels only; the judge's text (and the reference answers shown to it) never leak in.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from promptkit.errors import EvalError, file_location

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BENCHMARKS",
    "WEAK_MODEL",
    "STRONG_MODEL",
    "Benchmark",
    "RouteLLMData",
    "default_data_dir",
    "load_routellm",
    "load_routellm_csv",
]

Benchmark = Literal["gsm8k", "mmlu", "mt_bench"]
BENCHMARKS: tuple[Benchmark, ...] = ("gsm8k", "mmlu", "mt_bench")
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_MODEL = "gpt-4-1106-preview"

_ANSWER_T1 = re.compile(
    r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.DOTALL
)
_CONVERSATION = re.compile(
    r"<\|The Start of Assistant A's Conversation with User\|>(.*?)<\|The End of Assistant A's Conversation with User\|>",
    re.DOTALL,
)
_ASSISTANT_TURN = re.compile(r"### Assistant A:\n(.*?)(?=\n### User:|\Z)", re.DOTALL)


@dataclass
class RouteLLMData:
    """Queries of one benchmark after contamination exclusion.

    ``weak``/``strong`` hold each query's quality (0/1, or the mean 1-10 grade on MT-Bench); ``weak_answers``
    the weak model's answer text (None where the data has none: MMLU); ``groups`` a coarse label per query
    (the MMLU subject, the MT-Bench category, "gsm8k"), reported, never used as a feature by default.
    """

    benchmark: Benchmark
    prompts: list[str]
    weak: np.ndarray
    strong: np.ndarray
    weak_answers: list[str] | None
    groups: list[str]
    graded: bool
    total: int
    excluded: int
    source: Path
    ids: list[str] = field(default_factory=list)
    # RouteLLM's two models; other two-model outcome data names its own.
    weak_model: str = WEAK_MODEL
    strong_model: str = STRONG_MODEL

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices: np.ndarray | list[int]) -> RouteLLMData:
        idx = [int(i) for i in indices]
        return RouteLLMData(
            benchmark=self.benchmark,
            prompts=[self.prompts[i] for i in idx],
            weak=self.weak[idx],
            strong=self.strong[idx],
            weak_answers=[self.weak_answers[i] for i in idx] if self.weak_answers is not None else None,
            groups=[self.groups[i] for i in idx],
            graded=self.graded,
            total=self.total,
            excluded=self.excluded,
            source=self.source,
            ids=[self.ids[i] for i in idx] if self.ids else [],
            weak_model=self.weak_model,
            strong_model=self.strong_model,
        )

    def summary(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "queries": len(self),
            "total": self.total,
            "excluded_contaminated": self.excluded,
            "weak_quality": float(self.weak.mean()) if len(self) else None,
            "strong_quality": float(self.strong.mean()) if len(self) else None,
            "graded": self.graded,
            "has_weak_answers": self.weak_answers is not None,
            "weak_model": self.weak_model,
            "strong_model": self.strong_model,
        }


def default_data_dir(root: Path | None = None) -> Path:
    """``../shared/data/routellm`` beside the project root (the repo checkout), as CI lays it out."""
    base = root or Path(__file__).resolve().parents[3]
    return base.parent / "shared" / "data" / "routellm"


def _contaminated(path: Path) -> set[str]:
    # Optional: without the list nothing is excluded (figures then differ from the paper's, which excludes it).
    if not path.is_file():
        return set()
    prompts: set[str] = set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            prompts.add(json.loads(line)["eval_prompt"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise EvalError(
                "expected a JSON object with 'eval_prompt'", location=file_location(path, line_no)
            ) from None
    return prompts


def _flag(value: str, path: Path, line: int, column: str) -> float:
    if value == "True":
        return 1.0
    if value == "False":
        return 0.0
    raise EvalError(f"expected True/False, got {value[:40]!r}", location=file_location(path, line, column))


def _read_csv(path: Path, *, answers: bool) -> list[tuple[str, float, float, str | None]]:
    csv.field_size_limit(1 << 30)
    rows: list[tuple[str, float, float, str | None]] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            needed = ["prompt", WEAK_MODEL, STRONG_MODEL] + ([f"{WEAK_MODEL}_response"] if answers else [])
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise EvalError(f"missing column(s) {missing}", location=file_location(path, 1))
            for row in reader:
                line = reader.line_num
                rows.append(
                    (
                        row["prompt"],
                        _flag(row[WEAK_MODEL], path, line, WEAK_MODEL),
                        _flag(row[STRONG_MODEL], path, line, STRONG_MODEL),
                        row[f"{WEAK_MODEL}_response"] if answers else None,
                    )
                )
    except OSError as exc:
        raise EvalError(f"cannot read: {exc.strerror}", location=str(path)) from None
    return rows


def weak_answer_from_judge_prompt(user_prompt: str, turn: int) -> str:
    """The assistant's answer inside an MT-Bench judge prompt: its own words only, never the reference answer."""
    if turn == 1:
        match = _ANSWER_T1.search(user_prompt)
        return match.group(1).strip() if match else ""
    conversation = _CONVERSATION.search(user_prompt)
    if not conversation:
        return ""
    turns = _ASSISTANT_TURN.findall(conversation.group(1))
    return turns[-1].strip() if turns else ""


def _load_mt_bench(
    folder: Path, contaminated: set[str]
) -> tuple[list[tuple[str, float, float, str, str, str]], int]:
    questions_path, judgements_path = folder / "question.jsonl", folder / "judgements.jsonl"
    questions: dict[int, dict[str, object]] = {}
    for path in (questions_path, judgements_path):
        if not path.is_file():
            raise EvalError("missing MT-Bench file", location=str(path))
    for line_no, line in enumerate(questions_path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                q = json.loads(line)
                questions[int(q["question_id"])] = q
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise EvalError(
                    "bad question record", location=file_location(questions_path, line_no)
                ) from None
    scores: dict[tuple[int, str, int], float] = {}
    answers: dict[tuple[int, int], str] = {}
    for line_no, line in enumerate(judgements_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            j = json.loads(line)
            key = (int(j["question_id"]), str(j["model"]), int(j["turn"]))
            scores[key] = float(j["score"])
            if j["model"] == WEAK_MODEL:
                answers[(key[0], key[2])] = weak_answer_from_judge_prompt(str(j["user_prompt"]), key[2])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise EvalError(
                "bad judgement record", location=file_location(judgements_path, line_no)
            ) from None
    rows = []
    excluded = 0
    for qid in sorted(questions):
        q = questions[qid]
        turns = [str(t) for t in q["turns"]]  # type: ignore[union-attr]
        if any(t in contaminated for t in turns[:2]):
            excluded += 1
            continue
        try:
            weak = (scores[(qid, WEAK_MODEL, 1)] + scores[(qid, WEAK_MODEL, 2)]) / 2
            strong = (scores[(qid, STRONG_MODEL, 1)] + scores[(qid, STRONG_MODEL, 2)]) / 2
        except KeyError as exc:
            raise EvalError(
                f"question {qid} lacks a grade for {exc.args[0]}", location=str(judgements_path)
            ) from None
        answer = answers.get((qid, 1), "") + "\n\n" + answers.get((qid, 2), "")
        rows.append((turns[0], weak, strong, answer.strip(), str(q.get("category", "")), str(qid)))
    return rows, excluded


def load_routellm(
    benchmark: str, data_dir: str | Path | None = None, *, limit: int | None = None, seed: int = 0
) -> RouteLLMData:
    """Load one benchmark's recorded outcomes, excluding ``contaminated_prompts.jsonl`` as the paper does
    (when the folder has that list; it is optional).

    ``limit`` keeps a seeded random sample of that many queries (for quick runs and tests).
    """
    import numpy as np

    if benchmark not in BENCHMARKS:
        raise EvalError(
            f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}", location="--benchmark"
        )
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / benchmark
    if not folder.is_dir():
        raise EvalError(
            "RouteLLM data folder not found (expected lm-sys/RouteLLM's evals data, see shared/data/README.md)",
            location=str(folder),
        )
    contaminated = _contaminated(folder / "contaminated_prompts.jsonl")
    prompts: list[str] = []
    weak: list[float] = []
    strong: list[float] = []
    answers: list[str] | None = None
    groups: list[str] = []
    ids: list[str] = []
    excluded = 0
    if benchmark == "mt_bench":
        rows, excluded = _load_mt_bench(folder, contaminated)
        answers = []
        for prompt, w, s, answer, category, qid in rows:
            prompts.append(prompt)
            weak.append(w)
            strong.append(s)
            answers.append(answer)
            groups.append(category)
            ids.append(qid)
    else:
        files = (
            [folder / "gsm8k_responses.csv"]
            if benchmark == "gsm8k"
            else sorted((folder / "responses").glob("mmlu_*.csv"))
        )
        if not files or not files[0].is_file():
            raise EvalError("no response CSVs found", location=str(folder))
        answers = [] if benchmark == "gsm8k" else None
        for path in files:
            group = "gsm8k" if benchmark == "gsm8k" else path.stem.removeprefix("mmlu_")
            for n, (prompt, w, s, answer) in enumerate(_read_csv(path, answers=benchmark == "gsm8k")):
                if prompt in contaminated:
                    excluded += 1
                    continue
                prompts.append(prompt)
                weak.append(w)
                strong.append(s)
                groups.append(group)
                ids.append(f"{group}:{n}")
                if answers is not None:
                    answers.append(answer or "")
    total = len(prompts) + excluded
    data = RouteLLMData(
        benchmark=benchmark,  # type: ignore[arg-type]
        prompts=prompts,
        weak=np.asarray(weak, dtype=np.float64),
        strong=np.asarray(strong, dtype=np.float64),
        weak_answers=answers,
        groups=groups,
        graded=benchmark == "mt_bench",
        total=total,
        excluded=excluded,
        source=folder,
        ids=ids,
    )
    if limit is not None and limit < len(data):
        rng = np.random.default_rng(seed)
        data = data.subset(np.sort(rng.choice(len(data), size=limit, replace=False)))
    return data


def load_routellm_csv(path: str | Path) -> RouteLLMData:
    """A single RouteLLM-format CSV (``prompt`` plus a True/False column per model; GSM8K's layout), as is.

    The weak model's answer is read when its ``_response`` column is present. No contamination list applies.
    """
    import numpy as np

    source = Path(path)
    if not source.is_file():
        raise EvalError("RouteLLM-format CSV not found", location=str(source))
    with source.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    has_answers = f"{WEAK_MODEL}_response" in header
    rows = _read_csv(source, answers=has_answers)
    if not rows:
        raise EvalError("no rows", location=str(source))
    return RouteLLMData(
        benchmark="gsm8k" if has_answers else "mmlu",
        prompts=[r[0] for r in rows],
        weak=np.asarray([r[1] for r in rows]),
        strong=np.asarray([r[2] for r in rows]),
        weak_answers=[r[3] or "" for r in rows] if has_answers else None,
        groups=[source.stem] * len(rows),
        graded=False,
        total=len(rows),
        excluded=0,
        source=source,
        ids=[f"{source.stem}:{i}" for i in range(len(rows))],
    )
