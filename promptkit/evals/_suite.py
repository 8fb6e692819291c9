"""Eval suites: YAML files naming prompt variants, models, a dataset, scorers, repeats and CI gates.

    name: debug-fewshot-vs-zeroshot
    variants:
      - {name: zero-shot, template: debug, examples: {strategy: first_k, k: 0}}
      - {name: few-shot, template: debug, examples: {strategy: all}}
    models: [cheap]                      # or  router: promptkit.toml
    dataset: {path: data/bugs.jsonl, id_field: id, inputs: {language: lang, code: code}, expected: answer}
    scorers:
      - {type: exact, field: diagnosis}
    repeats: 3
    concurrency: 8
    seed: 0
    thresholds: {pass_rate: 0.8}

Every problem is an :class:`EvalError` naming ``file:line: field``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promptkit.errors import EvalError, PromptkitError
from promptkit.evals._dataset import DatasetSpec, Item, load_dataset
from promptkit.evals._scorers import Scorer, ScorerEnv, _FieldError, build_scorer
from promptkit.prompts import Document, ExampleSelection, LineMap, Template, raise_validation, read_document

__all__ = ["VariantSpec", "SuiteSpec", "Suite", "load_suite", "GATES"]

# CI gates besides per-scorer minimums (see promptkit.evals._ab.check_thresholds).
GATES = ("pass_rate", "error_rate")
_TEMPLATE_SUFFIXES = (".yaml", ".yml")


class VariantSpec(BaseModel):
    """One prompt variant: a template (name or path) and the options it is rendered with."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    template: str = Field(min_length=1)
    examples: ExampleSelection | str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)  # constant inputs added to every item's
    budget_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None  # e.g. the closing fence of a prefilled code block
    # A few-shot bank file (promptkit distill) whose examples replace the template's own.
    example_bank: str | None = Field(default=None, min_length=1)

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "template"}, exclude_none=True, exclude_defaults=True)


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str | None = None
    variants: list[VariantSpec] = Field(min_length=1)
    models: list[str] | None = None
    router: str | None = None  # a promptkit.toml whose [router] cascade is the one "model" under test
    dataset: DatasetSpec
    scorers: list[dict[str, Any]] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1)
    concurrency: int = Field(default=8, ge=1)
    seed: int = 0
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    cache: bool = True
    thresholds: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_model_source(self) -> SuiteSpec:
        if (self.models is None) == (self.router is None):
            raise ValueError("give exactly one of models: [...] or router: <promptkit.toml>")
        if self.models is not None and not self.models:
            raise ValueError("models must list at least one model")
        return self


class Suite:
    """A validated suite: the spec, where it came from, its hash, its scorers and (lazily) its items."""

    def __init__(
        self,
        spec: SuiteSpec,
        *,
        path: Path | None = None,
        base_dir: Path | None = None,
        lines: LineMap | None = None,
        text: str | None = None,
    ) -> None:
        self.spec = spec
        self.path = path
        self.base_dir = base_dir or (path.parent if path is not None else Path.cwd())
        self._lines = lines
        self._text = text if text is not None else json.dumps(spec.model_dump(mode="json"), sort_keys=True)
        self._items: list[Item] | None = None
        self._templates: dict[str, Template] = {}
        self._check()

    # -- construction -----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Path | str | None = None) -> Suite:
        """A suite from plain data (what a YAML file holds); errors name the field."""
        return cls(_validate(Document(dict(data), "suite")), base_dir=Path(base_dir) if base_dir else None)

    @property
    def name(self) -> str:
        return self.spec.name

    def with_overrides(
        self,
        *,
        models: Sequence[str] | None = None,
        limit: int | None = None,
        data: str | None = None,
        variants: Sequence[str] | None = None,
    ) -> Suite:
        """This suite run on other models, on the first ``limit`` items, on the dataset file ``data``, or with
        only the named ``variants`` (in the suite's order); the hash changes with them."""
        update: dict[str, Any] = {}
        if models:
            update.update(models=list(models), router=None)
        if variants:
            known = [v.name for v in self.spec.variants]
            unknown = [name for name in variants if name not in known]
            if unknown:
                raise EvalError(
                    f"no variant {unknown[0]!r} in this suite; its variants: {', '.join(known)}",
                    location=self.where("variants"),
                )
            update["variants"] = [v for v in self.spec.variants if v.name in variants]
        dataset: dict[str, Any] = {}
        if limit is not None:
            dataset["limit"] = limit
        if data is not None:
            dataset["path"] = str(Path(data).resolve())
        if dataset:
            update["dataset"] = self.spec.dataset.model_copy(update=dataset)
        if not update:
            return self
        spec = self.spec.model_copy(update=update)
        return Suite(spec, path=self.path, base_dir=self.base_dir, lines=self._lines)

    def where(self, *path: Any) -> str:
        """``file:line: field`` for a position in the suite document."""
        if self.path is None:
            return Document(None, f"suite {self.spec.name!r}").where(path)
        return Document(None, str(self.path), self._lines).where(path)

    def _check(self) -> None:
        spec = self.spec
        names = [v.name for v in spec.variants]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise EvalError(
                    f"duplicate variant name {name!r}", location=self.where("variants", index, "name")
                )
        for index, variant in enumerate(spec.variants):
            # A bank that does not exist yet (`promptkit distill` builds it from this very suite) is checked
            # when the variant runs; one that exists is checked now.
            self.template(variant, index, bank=self._bank_path(variant.example_bank).exists())
            if isinstance(variant.examples, str):
                try:
                    ExampleSelection.parse(variant.examples)
                except PromptkitError as exc:
                    raise EvalError(exc.message, location=self.where("variants", index, "examples")) from None
        scorers = self.build_scorers()
        scorer_names = [s.name for s in scorers]
        for index, made in enumerate(scorers):
            too_big = [k for k in getattr(made, "ks", []) if k > spec.repeats]
            if too_big:
                raise EvalError(
                    f"pass@{too_big[0]} needs at least {too_big[0]} samples per item; set repeats: to {max(too_big)} or more",
                    location=self.where("scorers", index, "k"),
                )
        for index, name in enumerate(scorer_names):
            if scorer_names.index(name) != index:
                raise EvalError(
                    f"two scorers are named {name!r}; give one a different name:",
                    location=self.where("scorers", index),
                )
        for gate in spec.thresholds:
            if gate not in GATES and gate not in scorer_names:
                raise EvalError(
                    f"unknown gate {gate!r}: use pass_rate, error_rate or a scorer name ({', '.join(scorer_names)})",
                    location=self.where("thresholds", gate),
                )

    # -- parts --------------------------------------------------------------------------------------------

    def template(self, variant: VariantSpec, index: int | None = None, *, bank: bool = True) -> Template:
        """The variant's template: a name on the search path, or a YAML file relative to the suite."""
        bank_path = variant.example_bank if bank else None
        key = f"{variant.template}\0{bank_path or ''}"
        found = self._templates.get(key)
        if found is not None:
            return found
        if index is None:
            index = self.spec.variants.index(variant)
        try:
            if variant.template.endswith(_TEMPLATE_SUFFIXES):
                path = Path(variant.template)
                found = Template.from_file(path if path.is_absolute() else self.base_dir / path)
            else:
                from promptkit.generation import template_for

                found = template_for(variant.template)
        except PromptkitError as exc:
            raise EvalError(str(exc), location=self.where("variants", index, "template")) from None
        if bank_path is not None:
            found = self._with_bank(found, bank_path, index)
        self._templates[key] = found
        return found

    def _bank_path(self, bank: str | None) -> Path:
        path = Path(bank or "").expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def _with_bank(self, template: Template, bank_path: str, index: int) -> Template:
        from promptkit.evals._bank import load_bank

        path = self._bank_path(bank_path)
        if not path.exists():
            raise EvalError(
                f"no few-shot bank at {path} (build it with `promptkit distill`)",
                location=self.where("variants", index, "example_bank"),
            )
        bank = load_bank(path)
        try:
            return template.with_examples(bank.examples, source=str(path))
        except PromptkitError as exc:
            raise EvalError(exc.message, location=exc.location or str(path)) from None

    def build_scorers(self, env: ScorerEnv | None = None) -> list[Scorer]:
        env = env or ScorerEnv(base_dir=self.base_dir)
        out: list[Scorer] = []
        for index, spec in enumerate(self.spec.scorers):
            try:
                out.append(build_scorer(spec, env))
            except _FieldError as exc:
                path = ("scorers", index, exc.field) if exc.field else ("scorers", index)
                raise EvalError(exc.message, location=self.where(*path)) from None
            except PromptkitError as exc:
                raise EvalError(exc.message, location=self.where("scorers", index)) from None
        return out

    def items(self) -> list[Item]:
        """The dataset's items, read once."""
        if self._items is None:
            self._items = load_dataset(self.spec.dataset, base=self.base_dir)
        return self._items

    def dataset_path(self) -> Path:
        path = Path(self.spec.dataset.path).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def hash(self) -> str:
        """sha256 of the suite text, the dataset bytes and the few-shot banks the variants use: a resumed run
        must see the same of all three."""
        digest = hashlib.sha256(self._text.encode())
        try:
            with self.dataset_path().open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise EvalError(
                f"cannot read the dataset: {exc.strerror}", location=self.where("dataset", "path")
            ) from None
        for bank in sorted({v.example_bank for v in self.spec.variants if v.example_bank}):
            path = self._bank_path(bank)
            if path.is_file():  # a bank not built yet is an error when its variant runs
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def model_names(self) -> list[str]:
        if self.spec.models is not None:
            return list(self.spec.models)
        return [f"router:{self.spec.router}"]


def _validate(doc: Document) -> SuiteSpec:
    if not isinstance(doc.data, dict):
        raise EvalError("a suite must be a mapping", location=doc.where(()))
    try:
        return SuiteSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise_validation(exc, doc, EvalError)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite YAML file; errors name ``file:line: field``."""
    path = Path(path)
    doc = read_document(path, EvalError, what="suite")
    return Suite(_validate(doc), path=path, lines=doc.lines, text=doc.text)
