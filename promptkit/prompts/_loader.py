"""Parse a template document (already loaded from YAML, with line numbers) into checked parts."""

from __future__ import annotations

import dataclasses
import difflib
import json
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_origin

import jinja2
from pydantic import BaseModel, TypeAdapter, ValidationError

from promptkit._plugins import import_ref, split_ref
from promptkit.errors import ExampleError, OutputSchemaError, TemplateLoadError
from promptkit.prompts._documents import LineMap, Path_
from promptkit.prompts._examples import Example, ExampleSelection
from promptkit.prompts._formats import TEXT_FORMATS, SectionsAnswer, TextFormat, format_for, sections_format
from promptkit.prompts._inputs import INPUT_TYPES, InputField, build_input_model, validation_problems
from promptkit.prompts._jinja import RESERVED_NAMES, compile_source
from promptkit.prompts._output import ANSWER_FIELD, OutputWrapper, output_model_for, output_type_name
from promptkit.prompts._schema import schema_to_model

__all__ = [
    "MessageSpec",
    "ExampleBlock",
    "ParsedTemplate",
    "parse_template",
    "resolve_output",
    "with_output",
    "TOP_LEVEL_KEYS",
]

TOP_LEVEL_KEYS = (
    "name",
    "version",
    "description",
    "tags",
    "inputs",
    "must_match",
    "output",
    "examples",
    "example_selection",
    "examples_trim_priority",
    "messages",
)
_INPUT_KEYS = (
    "type",
    "required",
    "default",
    "description",
    "enum",
    "min_length",
    "max_length",
    "minimum",
    "maximum",
    "items",
    "trim_priority",
    "trim",
)
_ITEM_KEYS = ("type", "description", "enum", "min_length", "max_length", "minimum", "maximum", "items")
_ROLES = ("system", "user", "assistant", "tool")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# semver.org's official pattern
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Jinja2 literals and names with a meaning of their own in templates.
_JINJA_WORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "loop", "self", "super", "varargs", "kwargs"}
)


@dataclass(frozen=True)
class MessageSpec:
    role: str
    source: str
    compiled: jinja2.Template
    path: Path_
    line: int | None
    name: str | None = None


@dataclass(frozen=True)
class ExampleBlock:
    messages: tuple[MessageSpec, ...]
    path: Path_
    line: int | None


@dataclass(frozen=True)
class ParsedTemplate:
    name: str
    version: str
    description: str
    tags: dict[str, tuple[str, ...]]
    inputs: dict[str, InputField]
    must_match: tuple[str, ...]
    output_schema: dict[str, Any] | None
    output_model_ref: str | None
    output_model: type[BaseModel] | None
    input_model: type[BaseModel]
    examples: tuple[Example, ...]
    raw_examples: tuple[dict[str, Any], ...]
    example_selection: ExampleSelection
    examples_trim_priority: int | None
    messages: tuple[MessageSpec | ExampleBlock, ...]
    raw_messages: tuple[dict[str, Any], ...]
    source: str | None
    lines: LineMap
    # `output: {model: "pkg.mod:Class"}` is imported on first use (see resolve_output), not at load time.
    output_pending: bool = False


class _Ctx:
    """Error helpers bound to one document."""

    def __init__(self, lines: LineMap, name: str | None) -> None:
        self.lines = lines
        self.name = name

    def where(self, path: Path_) -> str:
        return self.lines.where(path)

    def fail(self, path: Path_, problem: str) -> TemplateLoadError:
        prefix = f"template {self.name!r}: " if self.name else ""
        return TemplateLoadError(prefix + problem, location=self.where(path))


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _suggest(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(ctx: _Ctx, data: dict[str, Any], allowed: tuple[str, ...], path: Path_, what: str) -> None:
    for key in data:
        if key not in allowed:
            raise ctx.fail((*path, key), f"unknown key {key!r} in {what}{_suggest(str(key), allowed)}")


def _expect(ctx: _Ctx, value: Any, types: type | tuple[type, ...], path: Path_, what: str) -> None:
    # bool is an int in Python; a `true` where a number belongs is still a mistake.
    bad_bool = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    if not isinstance(value, types) or bad_bool:
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ctx.fail(path, f"{what} must be {names}, not {type(value).__name__}")


def parse_template(data: Any, lines: LineMap, *, output: Any = None) -> ParsedTemplate:
    """The checked parts of a template document; ``output`` (a type) replaces its ``output`` key."""
    ctx = _Ctx(lines, None)
    if not isinstance(data, dict):
        raise ctx.fail((), f"a template must be a YAML mapping, not {type(data).__name__}")
    _check_keys(ctx, data, TOP_LEVEL_KEYS, (), "the template")
    for required in ("name", "version", "messages"):
        if required not in data:
            raise ctx.fail((), f"missing required key {required!r}")

    name = data["name"]
    _expect(ctx, name, str, ("name",), "name")
    if not _NAME.match(name):
        raise ctx.fail(
            ("name",), f"name {name!r} must use only a-z, 0-9, '_' and '-' (and start with a letter or digit)"
        )
    ctx.name = name
    version = data["version"]
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)  # `version: 1.2` parses as a float; the semver check explains the problem
    _expect(ctx, version, str, ("version",), "version")
    if not _SEMVER.match(version):
        raise ctx.fail(("version",), f"version {version!r} is not a semantic version like 1.2.0")
    description = data.get("description", "") or ""
    _expect(ctx, description, str, ("description",), "description")

    tags = _parse_tags(ctx, data.get("tags"))
    inputs_data = data.get("inputs") or {}
    _expect(ctx, inputs_data, dict, ("inputs",), "inputs")
    must_match_data = data.get("must_match")
    must_match_path: Path_ = ("must_match",)
    if isinstance(inputs_data.get("must_match"), list):
        # Tolerate `must_match` written inside `inputs` (as the library README once showed it).
        if must_match_data is not None:
            raise ctx.fail(
                ("inputs", "must_match"), "must_match is given both at the top level and inside inputs"
            )
        inputs_data = {k: v for k, v in inputs_data.items() if k != "must_match"}
        must_match_data = data["inputs"]["must_match"]
        must_match_path = ("inputs", "must_match")
    inputs = {key: _parse_input(ctx, key, spec, ("inputs", key)) for key, spec in inputs_data.items()}
    must_match = _parse_must_match(ctx, must_match_data, inputs, must_match_path)
    input_model = build_input_model(name, inputs)

    output_schema, output_model_ref, output_model = _parse_output(ctx, data.get("output"))
    pending = output_model_ref is not None and output_model is None
    # With an output type given, the examples are checked against it, by with_output below.
    check_later = pending or output is not None

    selection_data = data.get("example_selection")
    if selection_data is None:
        selection = ExampleSelection()
    else:
        _expect(ctx, selection_data, dict, ("example_selection",), "example_selection")
        _check_keys(
            ctx,
            selection_data,
            ("strategy", "k", "seed", "budget"),
            ("example_selection",),
            "example_selection",
        )
        try:
            selection = ExampleSelection.model_validate(selection_data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ctx.fail(
                ("example_selection", *err["loc"]), f"example_selection.{field}: {err['msg']}"
            ) from None
    trim_priority = data.get("examples_trim_priority")
    if trim_priority is not None:
        _expect(ctx, trim_priority, int, ("examples_trim_priority",), "examples_trim_priority")

    raw_examples = data.get("examples") or []
    _expect(ctx, raw_examples, list, ("examples",), "examples")
    examples = tuple(
        _parse_example(ctx, i, ex, inputs, input_model, output_model, pending=check_later)
        for i, ex in enumerate(raw_examples)
    )

    raw_messages = data["messages"]
    _expect(ctx, raw_messages, list, ("messages",), "messages")
    if not raw_messages:
        raise ctx.fail(("messages",), "a template needs at least one message")
    messages = _parse_messages(ctx, raw_messages)

    parsed = ParsedTemplate(
        name=name,
        version=version,
        description=description.strip(),
        tags=tags,
        inputs=inputs,
        must_match=must_match,
        output_schema=output_schema,
        output_model_ref=output_model_ref,
        output_model=output_model,
        input_model=input_model,
        examples=examples,
        raw_examples=tuple(raw_examples),
        example_selection=selection,
        examples_trim_priority=trim_priority,
        messages=messages,
        raw_messages=tuple(raw_messages),
        source=lines.source,
        lines=lines,
        output_pending=pending,
    )
    return parsed if output is None else with_output(parsed, output)


def resolve_output(parsed: ParsedTemplate) -> ParsedTemplate:
    """``parsed`` with its ``output: {model: ...}`` imported and its examples checked against it.

    The import waits until the template is used (rendered, hashed, asked for its output), so that listing
    templates never imports user code; a failure is an ``OutputSchemaError`` naming the file and line.
    """
    if not parsed.output_pending:
        return parsed
    ctx = _Ctx(parsed.lines, parsed.name)
    assert parsed.output_model_ref is not None
    path: Path_ = ("output", "model")
    obj = _import_model(ctx, parsed.output_model_ref, path)
    model = output_model_for(obj, location=ctx.where(path))
    if model is None:  # `str`: free text
        return dataclasses.replace(parsed, output_model_ref=None, output_pending=False)
    return _replace_output(ctx, parsed, model, parsed.output_model_ref)


def with_output(parsed: ParsedTemplate, output_type: Any) -> ParsedTemplate:
    """``parsed`` answering in ``output_type`` (a pydantic model, ``list[Model]``, ``Literal``...; ``str`` for
    free text) instead of its own output; its examples must fit the new type (``ExampleError`` if not)."""
    ctx = _Ctx(parsed.lines, parsed.name)
    where = f"template {parsed.name!r}"
    model = output_model_for(output_type, location=where)
    if model is None:
        replaced = dataclasses.replace(
            parsed, output_schema=None, output_model_ref=None, output_model=None, output_pending=False
        )
        return _replace_examples(ctx, replaced, None)
    plain = isinstance(output_type, type) and get_origin(output_type) is None
    ref = f"{output_type.__module__}:{output_type.__qualname__}" if plain else output_type_name(output_type)
    return _replace_output(ctx, parsed, model, ref)


def with_examples(parsed: ParsedTemplate, raw_examples: Sequence[Any], source: str) -> ParsedTemplate:
    """``parsed`` with ``raw_examples`` (``{"inputs": ..., "output": ...}`` each) instead of its own examples,
    each checked like the template's own; an error names ``source`` (a few-shot bank file) and the index."""
    ctx = _Ctx(LineMap(source), parsed.name)
    replaced = dataclasses.replace(parsed, raw_examples=tuple(raw_examples))
    return _replace_examples(ctx, replaced, parsed.output_model)


def _replace_output(ctx: _Ctx, parsed: ParsedTemplate, model: type[BaseModel], ref: str) -> ParsedTemplate:
    replaced = dataclasses.replace(
        parsed, output_schema=None, output_model_ref=ref, output_model=model, output_pending=False
    )
    return _replace_examples(ctx, replaced, model)


def _replace_examples(ctx: _Ctx, parsed: ParsedTemplate, model: type[BaseModel] | None) -> ParsedTemplate:
    examples = tuple(
        _parse_example(ctx, i, ex, parsed.inputs, parsed.input_model, model)
        for i, ex in enumerate(parsed.raw_examples)
    )
    return dataclasses.replace(parsed, examples=examples)


def _parse_tags(ctx: _Ctx, data: Any) -> dict[str, tuple[str, ...]]:
    if data is None:
        return {}
    if isinstance(data, list):
        data = {"tags": data}
    _expect(ctx, data, dict, ("tags",), "tags")
    out: dict[str, tuple[str, ...]] = {}
    for key, values in data.items():
        if isinstance(values, str):
            values = [values]
        _expect(ctx, values, list, ("tags", key), f"tags.{key}")
        for i, value in enumerate(values):
            _expect(ctx, value, str, ("tags", key, i), f"tags.{key}[{i}]")
        out[str(key)] = tuple(values)
    return out


def _parse_must_match(ctx: _Ctx, data: Any, inputs: dict[str, InputField], path: Path_) -> tuple[str, ...]:
    if data is None:
        return ()
    _expect(ctx, data, list, path, "must_match")
    for i, item in enumerate(data):
        _expect(ctx, item, str, (*path, i), f"must_match[{i}]")
        if item not in inputs:
            raise ctx.fail((*path, i), f"must_match names {item!r}, which is not a declared input")
    return tuple(data)


def _parse_input(ctx: _Ctx, key: Any, spec: Any, path: Path_) -> InputField:
    if not isinstance(key, str) or not _IDENT.match(key) or keyword.iskeyword(key):
        hint = " (YAML reads yes/no/on/off as booleans: quote the name)" if isinstance(key, bool) else ""
        raise ctx.fail(
            path, f"input name {key!r} must be a Python/Jinja identifier (letters, digits, '_'){hint}"
        )
    if key in RESERVED_NAMES or key in _JINJA_WORDS:
        raise ctx.fail(path, f"input name {key!r} is reserved (the renderer defines it)")
    if isinstance(spec, str):
        spec = {"type": spec}  # shorthand: `code: string`
    if spec is None:
        spec = {}
    _expect(ctx, spec, dict, path, f"input {key!r}")
    _check_keys(ctx, spec, _INPUT_KEYS, path, f"input {key!r}")
    field = _parse_field_shape(ctx, key, spec, path)

    has_default = "default" in spec
    required = spec.get("required")
    if required is not None:
        _expect(ctx, required, bool, (*path, "required"), f"inputs.{key}.required")
        if required and has_default:
            raise ctx.fail((*path, "required"), f"input {key!r} is required but also has a default")
    is_required = bool(required) if required is not None else not has_default
    default = spec.get("default")
    trim_priority = spec.get("trim_priority")
    if trim_priority is not None:
        _expect(ctx, trim_priority, int, (*path, "trim_priority"), f"inputs.{key}.trim_priority")
        if field.type != "string":
            raise ctx.fail((*path, "trim_priority"), f"input {key!r}: only string inputs can be trimmed")
    trim = spec.get("trim", "middle")
    if trim not in ("middle", "tail"):
        raise ctx.fail((*path, "trim"), f"input {key!r}: trim must be 'middle' or 'tail', not {trim!r}")
    description = spec.get("description", "") or ""
    _expect(ctx, description, str, (*path, "description"), f"inputs.{key}.description")

    result = InputField(
        name=key,
        type=field.type,
        required=is_required,
        default=default,
        description=description.strip(),
        enum=field.enum,
        min_length=field.min_length,
        max_length=field.max_length,
        minimum=field.minimum,
        maximum=field.maximum,
        items=field.items,
        trim_priority=trim_priority,
        trim=trim,
    )
    if default is not None:
        try:
            TypeAdapter(result.annotation()).validate_python(default)
        except ValidationError as exc:
            _, problem = validation_problems(exc)[0]
            raise ctx.fail(
                (*path, "default"), f"input {key!r}: the default does not fit the type: {problem}"
            ) from None
    return result


def _parse_field_shape(ctx: _Ctx, key: str, spec: dict[str, Any], path: Path_) -> InputField:
    """type, enum, lengths, bounds and items: what inputs and array items share."""
    type_ = spec.get("type", "string")
    if type_ not in INPUT_TYPES:
        raise ctx.fail(
            (*path, "type"), f"input {key!r}: type {type_!r} is not one of {', '.join(INPUT_TYPES)}"
        )
    for bound in ("min_length", "max_length"):
        if bound in spec:
            _expect(ctx, spec[bound], int, (*path, bound), f"inputs.{key}.{bound}")
            if type_ not in ("string", "array"):
                raise ctx.fail(
                    (*path, bound), f"input {key!r}: {bound} applies to string and array inputs only"
                )
    for bound in ("minimum", "maximum"):
        if bound in spec:
            _expect(ctx, spec[bound], (int, float), (*path, bound), f"inputs.{key}.{bound}")
            if type_ not in ("integer", "number"):
                raise ctx.fail(
                    (*path, bound), f"input {key!r}: {bound} applies to integer and number inputs only"
                )
    enum = spec.get("enum")
    if enum is not None:
        _expect(ctx, enum, list, (*path, "enum"), f"inputs.{key}.enum")
        if not enum:
            raise ctx.fail((*path, "enum"), f"input {key!r}: enum must not be empty")
        base = InputField(name=key, type=type_)
        adapter = TypeAdapter(base.annotation())
        for i, value in enumerate(enum):
            try:
                adapter.validate_python(value)
            except ValidationError:
                raise ctx.fail(
                    (*path, "enum", i), f"input {key!r}: enum value {value!r} is not a {type_}"
                ) from None
    items = None
    if "items" in spec:
        if type_ != "array":
            raise ctx.fail((*path, "items"), f"input {key!r}: items applies to array inputs only")
        item_spec = spec["items"]
        if isinstance(item_spec, str):
            item_spec = {"type": item_spec}
        _expect(ctx, item_spec, dict, (*path, "items"), f"inputs.{key}.items")
        _check_keys(ctx, item_spec, _ITEM_KEYS, (*path, "items"), f"the items of input {key!r}")
        items = _parse_field_shape(ctx, f"{key}[]", item_spec, (*path, "items"))
    return InputField(
        name=key,
        type=type_,
        enum=tuple(enum) if enum is not None else None,
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length"),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        items=items,
    )


def _parse_output(ctx: _Ctx, data: Any) -> tuple[dict[str, Any] | None, str | None, type[BaseModel] | None]:
    if data is None:
        return None, None, None
    path: Path_ = ("output",)
    _expect(ctx, data, dict, path, "output")
    if "format" in data:
        model = format_for(data["format"])
        if model is None:
            raise OutputSchemaError(
                f"template {ctx.name!r}: unknown output format {data['format']!r}; known: {sorted(TEXT_FORMATS)}",
                location=ctx.where((*path, "format")),
            )
        if model is SectionsAnswer:
            if set(data) != {"format", "fields"} or not isinstance(data["fields"], dict):
                raise ctx.fail(path, "output: {format: sections, fields: {name: text | code, ...}}")
            try:
                model = sections_format(f"{ctx.name}_output", data["fields"])
            except ValueError as exc:
                raise OutputSchemaError(
                    f"template {ctx.name!r}: {exc}", location=ctx.where((*path, "fields"))
                ) from None
            fields = ",".join(f"{k}={v}" for k, v in data["fields"].items())
            return None, f"format:sections:{fields}", model
        if set(data) != {"format"}:
            raise ctx.fail(path, "output: {format: NAME} takes no other keys")
        return None, f"format:{model.format_name}", model
    if "model" in data:
        if set(data) != {"model"}:
            raise ctx.fail(path, "output: {model: 'pkg.module:Class'} takes no other keys")
        ref = data["model"]
        _expect(ctx, ref, str, (*path, "model"), "output.model")
        _split_ref(ctx, ref, (*path, "model"))
        return None, ref, None  # imported on first use: resolve_output
    try:
        model = schema_to_model(data, f"{ctx.name}_output", location=ctx.where(path))
    except OutputSchemaError as exc:
        # Point at the line of the offending keyword: the JSON path names it.
        json_path = exc.message.split(":", 1)[0]
        inner = _json_path_to_yaml(json_path)
        raise OutputSchemaError(
            f"template {ctx.name!r}: {exc.message}", location=ctx.where((*path, *inner))
        ) from None
    return data, None, model


def _json_path_to_yaml(json_path: str) -> Path_:
    parts = json_path.lstrip("$").strip(".").split(".") if json_path.startswith("$") else []
    return tuple(p for p in parts if p)


def _split_ref(ctx: _Ctx, ref: str, path: Path_) -> None:
    parts = split_ref(ref)
    if parts is None or parts[1] is None:
        raise OutputSchemaError(
            f"template {ctx.name!r}: output.model {ref!r} must look like 'package.module:Class'",
            location=ctx.where(path),
        )


def _import_model(ctx: _Ctx, ref: str, path: Path_) -> Any:
    """The object ``ref`` names: a pydantic model, or any output type (``Invoices = list[Invoice]``)."""
    _split_ref(ctx, ref, path)
    try:
        return import_ref(ref, what="output model", location=ctx.where(path), error=OutputSchemaError)
    except OutputSchemaError as exc:  # any failure while importing user code is this template's error
        raise OutputSchemaError(f"template {ctx.name!r}: {exc.message}", location=exc.location) from None


def _parse_example(
    ctx: _Ctx,
    index: int,
    data: Any,
    inputs: dict[str, InputField],
    input_model: type[BaseModel],
    output_model: type[BaseModel] | None,
    *,
    pending: bool = False,
) -> Example:
    path: Path_ = ("examples", index)
    prefix = f"template {ctx.name!r} example {index + 1}"
    if not isinstance(data, dict):
        raise ExampleError(f"{prefix}: must be a mapping with inputs and output", location=ctx.where(path))
    for key in data:
        if key not in ("inputs", "output"):
            raise ExampleError(
                f"{prefix}: unknown key {key!r} (an example has inputs and output)",
                location=ctx.where((*path, key)),
            )
    raw_inputs = data.get("inputs") or {}
    if not isinstance(raw_inputs, dict):
        raise ExampleError(f"{prefix}: inputs must be a mapping", location=ctx.where((*path, "inputs")))
    try:
        validated = input_model.model_validate(raw_inputs)
    except ValidationError as exc:
        field, problem = validation_problems(exc)[0]
        where = ctx.where((*path, "inputs", field)) if field in raw_inputs else ctx.where((*path, "inputs"))
        raise ExampleError(f"{prefix}: input {field!r}: {problem}", location=where) from None
    if "output" not in data:
        raise ExampleError(f"{prefix}: missing output", location=ctx.where(path))
    output = data["output"]
    values = dict(validated.__dict__)
    if pending:  # the output model is not imported yet: resolve_output checks the output then
        text = output if isinstance(output, str) else json.dumps(output, indent=2, ensure_ascii=False)
        return Example(values, output, text, index)
    if output_model is None:
        if not isinstance(output, str):
            raise ExampleError(
                f"{prefix}: output must be text (the template has no output schema), not {type(output).__name__}",
                location=ctx.where((*path, "output")),
            )
        output_json = output
    else:
        wrapped = issubclass(output_model, OutputWrapper)  # the example shows the bare value
        try:
            output_model.model_validate({ANSWER_FIELD: output} if wrapped else output)
        except ValidationError as exc:
            field, problem = validation_problems(exc)[0]
            if wrapped:
                field = field.removeprefix(ANSWER_FIELD).lstrip(".") or "<inputs>"
            sub = tuple(field.split(".")) if field != "<inputs>" else ()
            raise ExampleError(
                f"{prefix}: output {field!r}: {problem}".replace("'<inputs>'", "(root)"),
                location=ctx.where((*path, "output", *sub)),
            ) from None
        if issubclass(output_model, TextFormat):  # the example's answer as the model should write it
            output_json = output_model.model_validate(output).to_text()
        else:
            shown = {ANSWER_FIELD: output} if wrapped else output
            output_json = json.dumps(shown, indent=2, ensure_ascii=False, default=str)
    return Example(values, output, output_json, index)


def _parse_messages(ctx: _Ctx, raw: list[Any]) -> tuple[MessageSpec | ExampleBlock, ...]:
    out: list[MessageSpec | ExampleBlock] = []
    blocks = 0
    for i, item in enumerate(raw):
        path: Path_ = ("messages", i)
        _expect(ctx, item, dict, path, f"messages[{i}]")
        if "examples" in item:
            if set(item) != {"examples"}:
                raise ctx.fail(path, f"messages[{i}]: an examples block has only the key 'examples'")
            blocks += 1
            if blocks > 1:
                raise ctx.fail(path, "only one examples block is allowed")
            inner = item["examples"]
            _expect(ctx, inner, list, (*path, "examples"), f"messages[{i}].examples")
            if not inner:
                raise ctx.fail((*path, "examples"), "an examples block needs at least one message")
            specs = tuple(_parse_message(ctx, m, (*path, "examples", j)) for j, m in enumerate(inner))
            out.append(ExampleBlock(specs, path, ctx.lines.line(path)))
        else:
            out.append(_parse_message(ctx, item, path))
    return tuple(out)


def _parse_message(ctx: _Ctx, item: Any, path: Path_) -> MessageSpec:
    what = _dotted(path)
    _expect(ctx, item, dict, path, what)
    _check_keys(ctx, item, ("role", "content", "name"), path, what)
    role = item.get("role")
    if role not in _ROLES:
        raise ctx.fail((*path, "role"), f"{what}.role must be one of {', '.join(_ROLES)}, not {role!r}")
    if "content" not in item:
        raise ctx.fail(path, f"{what} has no content")
    content = item["content"]
    _expect(ctx, content, str, (*path, "content"), f"{what}.content")
    name = item.get("name")
    if name is not None:
        _expect(ctx, name, str, (*path, "name"), f"{what}.name")
    try:
        compiled = compile_source(content)
    except jinja2.TemplateSyntaxError as exc:
        line = ctx.lines.content_line((*path, "content"), exc.lineno or 1)
        location = f"{ctx.lines.source}:{line}" if line is not None else ctx.where(path)
        raise TemplateLoadError(
            f"template {ctx.name!r}: Jinja syntax error in {what}.content: {exc.message}", location=location
        ) from None
    return MessageSpec(role, content, compiled, path, ctx.lines.line(path), name)
