"""The Template: loaded once, rendered many times on a hot path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import jinja2
from jinja2.sandbox import SecurityError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptkit.errors import PromptkitError, RenderError, TemplateLoadError
from promptkit.prompts._documents import LineMap, load_yaml, read_text
from promptkit.prompts._examples import Example, ExampleSelection, inputs_text, select_examples
from promptkit.prompts._formats import TextFormat
from promptkit.prompts._inputs import InputField, raise_input_error
from promptkit.prompts._jinja import environment, render_compiled, undeclared_variables
from promptkit.prompts._loader import (
    ExampleBlock,
    MessageSpec,
    ParsedTemplate,
    parse_template,
    resolve_output,
    with_examples,
    with_output,
)
from promptkit.prompts._output import OutputWrapper, output_type_key
from promptkit.prompts._token_budget import fit_examples, fit_to_budget
from promptkit.prompts._tokens import count_tokens_detailed
from promptkit.types import Embedder, Message, trusted_model

__all__ = ["Template", "RenderedPrompt"]

OutT = TypeVar("OutT")
NewT = TypeVar("NewT")


class RenderedPrompt(BaseModel):
    """The messages a template produced, with what it took to make them fit."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    template: str
    version: str
    hash: str
    messages: list[Message]
    output_model: type[BaseModel] | None = Field(default=None, exclude=True)
    token_count: int | None = None
    # False when the count is the approximation used without litellm (see count_tokens).
    token_count_exact: bool = True
    trimmed: list[str] = Field(default_factory=list)
    examples_used: int = 0

    @property
    def template_id(self) -> str:
        return f"{self.template}@{self.version}"

    def to_dicts(self) -> list[dict[str, str]]:
        """Messages as plain ``{role, content}`` dicts (the shape chat APIs take)."""
        return [m.model_dump(exclude_none=True) for m in self.messages]


class Template(Generic[OutT]):
    """A typed, versioned prompt template (see promptkit/templates/README.md for the file format).

    ``OutT`` is the type of the answer's parsed output, for type checkers: ``Template[Invoice]`` comes from
    ``with_output(Invoice)``, ``from_file(..., output=Invoice)`` or :func:`promptkit.prompts.template`; a
    template loaded from YAML alone is ``Template[Any]``.
    """

    __slots__ = (
        "_parsed",
        "_base_context",
        "_hash",
        "_examples_message",
        "_input_names",
        "_has_block",
        "_constant",
        "_memo",
        "_variants",
        "__weakref__",
    )

    def __init__(self, parsed: ParsedTemplate) -> None:
        self._parsed = parsed
        self._input_names = frozenset(parsed.inputs)
        self._has_block = any(isinstance(m, ExampleBlock) for m in parsed.messages)
        self._examples_message = self._find_examples_message()
        # Messages whose text depends on nothing, or only on `example`, render the same every time:
        # render them once and reuse the (immutable) Message.
        self._constant = self._find_constant_messages()
        self._memo: dict[tuple[int, int, int], Message | None] = {}
        self._variants: dict[Any, Template[Any]] = {}  # with_output's results, per output type
        self._base_context: dict[str, Any] = {}
        self._hash = ""
        if not parsed.output_pending:
            self._finish()

    def _finish(self) -> None:
        """Build what depends on the output model: the render context and the hash."""
        env = environment()
        # Everything but the inputs is the same on every render: build it once.
        self._base_context = {**env.globals, "output_schema": self.output_schema_text}
        self._hash = hashlib.sha256(_canonical(self._hash_payload()).encode("utf-8")).hexdigest()

    def _ready(self) -> ParsedTemplate:
        """The parsed template, its ``output: {model: ...}`` imported on first use (OutputSchemaError naming
        the file and line when the import fails)."""
        parsed = self._parsed
        if parsed.output_pending:
            parsed = self._parsed = resolve_output(parsed)
            self._memo.clear()
            self._finish()
        return parsed

    # ---- construction -------------------------------------------------------------------------------

    @overload
    @classmethod
    def from_file(cls, path: str | Path, *, output: type[NewT]) -> Template[NewT]: ...
    @overload
    @classmethod
    def from_file(cls, path: str | Path, *, output: Any = None) -> Template[Any]: ...
    @classmethod
    def from_file(cls, path: str | Path, *, output: Any = None) -> Template[Any]:
        """Load a template file; ``output`` (a pydantic model, ``list[Model]``, ``Literal``...) replaces the
        output the file declares (see :meth:`with_output`)."""
        text = read_text(path, TemplateLoadError, what="template")
        return cls.from_text(text, source=str(path), output=output)

    @overload
    @classmethod
    def from_text(cls, text: str, *, source: str | None = None, output: type[NewT]) -> Template[NewT]: ...
    @overload
    @classmethod
    def from_text(cls, text: str, *, source: str | None = None, output: Any = None) -> Template[Any]: ...
    @classmethod
    def from_text(cls, text: str, *, source: str | None = None, output: Any = None) -> Template[Any]:
        """A template from YAML text; ``source`` names it in errors (``source:line``)."""
        data, lines = load_yaml(text, source or "<string>")
        return cls(parse_template(data, lines, output=output))

    @overload
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str | None = None, *, output: type[NewT]
    ) -> Template[NewT]: ...
    @overload
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str | None = None, *, output: Any = None
    ) -> Template[Any]: ...
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str | None = None, *, output: Any = None
    ) -> Template[Any]:
        """A template from already-parsed data (what a template file holds); errors name ``source``."""
        return cls(parse_template(dict(data), LineMap(source or "<dict>"), output=output))

    @overload
    def with_output(self, output: type[NewT]) -> Template[NewT]: ...
    @overload
    def with_output(self, output: Any) -> Template[Any]: ...
    def with_output(self, output: Any) -> Template[Any]:
        """This template answering in ``output`` instead of its own output type.

        ``output`` is a pydantic model, or any type pydantic validates (``list[Model]``, ``Literal[...]``, an
        ``Enum``, ``int``...: the answer is written as ``{"answer": ...}`` and the value unwrapped), or ``str``
        for free text. ``{{ output_schema }}``, the grammar, the tool schema and the hash follow the new type;
        the template's examples must fit it (``ExampleError`` otherwise). Cached per type.
        """
        key = output_type_key(output)
        found = self._variants.get(key)
        if found is None:
            # The template's own output is replaced, so a pending `output: {model: ...}` is never imported.
            found = self._variants.setdefault(key, Template(with_output(self._parsed, output)))
        return found

    def with_examples(
        self, examples: Sequence[Mapping[str, Any]], *, source: str = "<examples>"
    ) -> Template[OutT]:
        """This template with ``examples`` (``{"inputs": {...}, "output": ...}`` each, e.g. a distilled few-shot
        bank) instead of its own; they are validated like the template's own, and the hash follows them."""
        parsed = with_examples(self._ready(), [dict(e) for e in examples], source)
        return Template(parsed)

    # ---- identity ----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._parsed.name

    @property
    def version(self) -> str:
        return self._parsed.version

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def hash(self) -> str:
        """sha256 of everything that changes rendering or parsing (not the description or tags)."""
        if self._parsed.output_pending:
            self._ready()
        return self._hash

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def description(self) -> str:
        return self._parsed.description

    @property
    def tags(self) -> dict[str, tuple[str, ...]]:
        return dict(self._parsed.tags)

    @property
    def all_tags(self) -> list[str]:
        return sorted({t for values in self._parsed.tags.values() for t in values})

    @property
    def source(self) -> str | None:
        return self._parsed.source

    # ---- declared parts ----------------------------------------------------------------------------

    @property
    def inputs(self) -> dict[str, InputField]:
        return dict(self._parsed.inputs)

    @property
    def must_match(self) -> tuple[str, ...]:
        return self._parsed.must_match

    @property
    def input_model(self) -> type[BaseModel]:
        return self._parsed.input_model

    @property
    def output_model(self) -> type[BaseModel] | None:
        """The pydantic model of a structured answer (an ``OutputWrapper`` for a type that is not a model);
        None for free text."""
        return self._ready().output_model

    @property
    def output_type(self) -> Any:
        """The type of the parsed output: the output model, the type a wrapper carries (``list[Invoice]``),
        or ``str`` for free text."""
        model = self._ready().output_model
        if model is None:
            return str
        return model.output_type if issubclass(model, OutputWrapper) else model

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """The output's JSON schema: as written, or the referenced model's schema."""
        parsed = self._ready()
        if parsed.output_schema is not None:
            return parsed.output_schema
        if parsed.output_model is not None:
            return parsed.output_model.model_json_schema()
        return None

    @property
    def output_schema_text(self) -> str:
        """The output's JSON schema as text, or a text format's instructions (``{{ output_schema }}``)."""
        model = self._ready().output_model
        if model is not None and issubclass(model, TextFormat):
            return model.instructions
        schema = self.output_schema
        return json.dumps(schema, indent=2, ensure_ascii=False, default=str) if schema is not None else ""

    @property
    def examples(self) -> tuple[Example, ...]:
        return self._ready().examples

    @property
    def example_selection(self) -> ExampleSelection:
        return self._parsed.example_selection

    @property
    def examples_trim_priority(self) -> int | None:
        return self._parsed.examples_trim_priority

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages as written in the file (Jinja source)."""
        return [dict(m) for m in self._parsed.raw_messages]

    @property
    def line_map(self) -> LineMap:
        """Where each key of the source file is (empty for templates built from a dict)."""
        return self._parsed.lines

    @property
    def message_specs(self) -> tuple[MessageSpec | ExampleBlock, ...]:
        return self._parsed.messages

    @property
    def uses_examples(self) -> bool:
        """Whether the rendered text contains the examples (an examples block, or `examples` in a message)."""
        return self._has_block or self._examples_message is not None

    def variables(self) -> dict[int, set[str]]:
        """Variables each message (by index) uses that the renderer does not define itself."""
        out: dict[int, set[str]] = {}
        for i, spec in enumerate(self._parsed.messages):
            sources = [m.source for m in spec.messages] if isinstance(spec, ExampleBlock) else [spec.source]
            out[i] = set().union(*(undeclared_variables(s) for s in sources))
        return out

    def __repr__(self) -> str:
        shown = "(output model not imported yet)" if self._parsed.output_pending else self.short_hash
        return f"Template({self.id}, hash={shown})"

    def _hash_payload(self) -> dict[str, Any]:
        p = self._parsed
        output: Any = None
        if p.output_schema is not None:
            output = p.output_schema
        elif p.output_model is not None:
            output = {"model": p.output_model_ref, "schema": p.output_model.model_json_schema()}
        return {
            "messages": list(p.raw_messages),
            "inputs": {name: spec.spec() for name, spec in p.inputs.items()},
            "must_match": list(p.must_match),
            "output": output,
            "examples": list(p.raw_examples),
            "example_selection": p.example_selection.model_dump(),
            "examples_trim_priority": p.examples_trim_priority,
        }

    def _find_constant_messages(self) -> frozenset[tuple[int, int]]:
        constant: set[tuple[int, int]] = set()
        for i, spec in enumerate(self._parsed.messages):
            if isinstance(spec, MessageSpec):
                if not undeclared_variables(spec.source, include_globals=True):
                    constant.add((i, -1))
                continue
            for j, item in enumerate(spec.messages):
                if undeclared_variables(item.source, include_globals=True) <= {"example"}:
                    constant.add((i, j))
        return frozenset(constant)

    def _find_examples_message(self) -> int | None:
        """Without an examples block, the first message whose text uses ``examples`` carries the marker."""
        for i, spec in enumerate(self._parsed.messages):
            if isinstance(spec, MessageSpec) and "examples" in undeclared_variables(spec.source):
                return i
        return None

    # ---- rendering ---------------------------------------------------------------------------------

    def validate_inputs(self, inputs: Mapping[str, Any] | None = None, **more_inputs: Any) -> dict[str, Any]:
        """Checked inputs with defaults filled in; raises InputValidationError naming the field.

        Inputs come as a mapping, as keyword arguments (``validate_inputs(code=src)``), or both.
        """
        if inputs is not None and not isinstance(inputs, Mapping):
            raise RenderError(
                f"template {self.name!r}: inputs must be a mapping, not {type(inputs).__name__}"
            )
        data: Mapping[str, Any]
        if more_inputs:
            data = {**inputs, **more_inputs} if inputs else more_inputs
        else:
            data = inputs if inputs is not None else {}
        try:
            return dict(self._parsed.input_model.model_validate(data).__dict__)
        except ValidationError as exc:
            raise_input_error(self.name, exc, self._parsed.inputs)

    def render(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        examples: ExampleSelection | str | None = None,
        budget: int | None = None,
        model: str | None = None,
        embedder: Embedder | None = None,
        **more_inputs: Any,
    ) -> RenderedPrompt:
        """Validate ``inputs``, pick examples, render every message; fit ``budget`` tokens if given.

        Inputs come as a mapping, as keyword arguments (``render(language="python", code=src)``), or both.
        ``examples`` overrides the template's example selection (``"first_k:2"``, an ExampleSelection);
        ``model`` picks the tokenizer that counts tokens; ``embedder`` ranks examples for ``similar_k``.
        The token count is filled when ``budget`` or ``model`` is given (it costs a tokenizer call).
        """
        if self._parsed.output_pending:
            self._ready()
        values = self.validate_inputs(inputs, **more_inputs)
        selection = self._selection(examples)
        chosen = self._select(selection, values, embedder, model)
        count: int | None
        if budget is not None:
            if selection.strategy == "fit_budget" and selection.budget is None:
                chosen = fit_examples(self, values, chosen, budget, model)
            messages, count, exact, trimmed, chosen = fit_to_budget(self, values, chosen, budget, model)
        else:
            messages = self.render_messages(values, chosen)
            trimmed = []
            count, exact = count_tokens_detailed(messages, model) if model is not None else (None, True)
        # Every value is ours and typed: built without a second validation (this runs on every call).
        return trusted_model(
            RenderedPrompt,
            {
                "template": self._parsed.name,
                "version": self._parsed.version,
                "hash": self._hash,
                "messages": messages,
                "output_model": self._parsed.output_model,
                "token_count": count,
                "token_count_exact": exact,
                "trimmed": trimmed,
                "examples_used": len(chosen),
            },
        )

    def _selection(self, examples: ExampleSelection | str | None) -> ExampleSelection:
        if examples is None:
            return self._parsed.example_selection
        if isinstance(examples, str):
            return ExampleSelection.parse(examples)
        if isinstance(examples, ExampleSelection):
            return examples
        raise RenderError(
            f"template {self.name!r}: examples must be an ExampleSelection or a strategy string"
        )

    def _select(
        self,
        selection: ExampleSelection,
        values: dict[str, Any],
        embedder: Embedder | None,
        model: str | None,
    ) -> list[Example]:
        pool = self._parsed.examples
        if not pool:
            return []

        def example_tokens(example: Example) -> int:
            pair = [
                {"role": "user", "content": example.text},
                {"role": "assistant", "content": example.output_json},
            ]
            return count_tokens_detailed(pair, model)[0]

        return select_examples(
            pool,
            selection,
            query=lambda: inputs_text(values),
            embedder=embedder,
            example_tokens=example_tokens,
        )

    def render_messages(
        self, values: dict[str, Any], chosen: list[Example], note: str | None = None
    ) -> list[Message]:
        """Render every message with already-validated ``values``; ``note`` marks dropped examples."""
        if self._parsed.output_pending:
            self._ready()
        context = {**self._base_context, **values, "examples": chosen}
        out: list[Message] = []
        block_at: int | None = None  # index in `out` where the examples block's messages begin
        block_count = 0
        constant = self._constant
        for index, spec in enumerate(self._parsed.messages):
            if isinstance(spec, MessageSpec):
                if index == self._examples_message and note is not None and not self._has_block:
                    text = self._render_one(spec, context, index).strip()
                    text = f"{text}\n\n{note}" if text else note
                    out.append(Message(role=spec.role, content=text, name=spec.name))  # type: ignore[arg-type]
                    continue
                message = self._message(
                    spec, context, index, (index, -1, -1) if (index, -1) in constant else None
                )
                if message is not None:
                    out.append(message)
                continue
            block_at = len(out)
            for example in chosen:
                context["example"] = example
                for j, item in enumerate(spec.messages):
                    key = (index, j, example.index) if (index, j) in constant else None
                    message = self._message(item, context, index, key)
                    if message is not None:
                        out.append(message)
            context.pop("example", None)
            block_count = len(out) - block_at
        if note is not None and self._has_block and block_at is not None:
            _place_note(out, block_at, block_count, note)
        return out

    def _message(
        self, spec: MessageSpec, context: dict[str, Any], index: int, key: tuple[int, int, int] | None
    ) -> Message | None:
        """The rendered message (None when its text is empty), memoised under ``key`` when constant."""
        if key is not None and key in self._memo:
            return self._memo[key]
        text = self._render_one(spec, context, index)
        # A closing assistant message is a prefill the model writes on from: its trailing newline is part of it.
        prefill = spec.role == "assistant" and index == len(self._parsed.messages) - 1
        text = text.lstrip() if prefill else text.strip()
        # The role and name were validated when the template loaded; the text is a str.
        message = (
            trusted_model(Message, {"role": spec.role, "content": text, "name": spec.name}) if text else None
        )
        if key is not None:
            self._memo[key] = message
        return message

    def _render_one(self, spec: MessageSpec, context: dict[str, Any], index: int) -> str:
        template = spec.compiled
        try:
            return render_compiled(template, context)
        except PromptkitError:
            raise
        except SecurityError as exc:
            raise self._render_error(spec, index, f"sandbox violation: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise self._render_error(spec, index, f"undefined variable: {exc.message}") from None
        except Exception as exc:  # noqa: BLE001 - any failure inside template code is a render error
            raise self._render_error(spec, index, f"{type(exc).__name__}: {exc}") from None

    def _render_error(self, spec: MessageSpec, index: int, problem: str) -> RenderError:
        where = f"{self._parsed.source}:{spec.line}" if spec.line is not None else self._parsed.source
        return RenderError(f"template {self.name!r} message {index}: {problem}", location=where)


def _place_note(out: list[Message], block_at: int, block_count: int, note: str) -> None:
    """After the last example message; or, when none is left, before the message that followed the block."""
    if block_count:
        target = block_at + block_count - 1
        out[target] = out[target].model_copy(update={"content": f"{out[target].content}\n\n{note}"})
        return
    if block_at < len(out):
        out[block_at] = out[block_at].model_copy(update={"content": f"{note}\n\n{out[block_at].content}"})
    elif out:
        out[-1] = out[-1].model_copy(update={"content": f"{out[-1].content}\n\n{note}"})
    else:
        out.append(Message.model_construct(role="user", content=note, name=None))


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
