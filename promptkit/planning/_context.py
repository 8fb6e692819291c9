"""The values playbooks see: the spec plus derived names, code fragments and test data, all deterministic.

Everything here is computed in Python so that playbook templates stay declarative loops, and so that the
generated code and its test data are correct by construction (types, constraints, imports).
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from typing import Any

from promptkit._text import closing_bracket
from promptkit.planning._naming import kebab_case, pluralize, snake_case
from promptkit.planning._spec import (
    AppSpec,
    Entity,
    EntityField,
    Feature,
    FeatureExample,
    TaskSpec,
    parse_http_call,
    split_command,
)

__all__ = ["spec_context", "sample_value"]

_PY_TYPES = {
    "str": "str",
    "text": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
}
_SQL_TYPES = {
    "str": "TEXT",
    "text": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "date": "TEXT",
    "datetime": "TEXT",
}


def sample_value(f: EntityField, variant: int) -> Any:
    """A JSON-able value valid for ``f``; variants 0 and 1 differ whenever the field's domain allows."""
    if f.type in ("str", "text"):
        base = f"{f.name.replace('_', '-')}-" if f.type == "str" else f"Some {f.name.replace('_', ' ')} text "
        value = f"{base}{variant}"
        if f.max_length is not None and len(value) > f.max_length:
            value = base[: f.max_length - 1] + str(variant) if f.max_length >= 2 else str(variant)
        return value
    if f.type == "bool":
        return variant == 0
    if f.type == "date":
        return f"2024-0{1 + variant}-15"
    if f.type == "datetime":
        return f"2024-0{1 + variant}-15T09:30:00"
    if f.type == "int":
        lo = math.ceil(f.min) if f.min is not None else 1
        hi = math.floor(f.max) if f.max is not None else None
        value = lo + variant
        if hi is not None and value > hi:
            value = max(lo, hi - variant)
        return value
    lo_f = float(f.min) if f.min is not None else 1.0
    value_f = lo_f + 0.5 * (variant + 1)
    if f.max is not None and value_f > f.max:
        value_f = (lo_f + f.max) / 2 if variant == 0 else float(f.max)
    return round(value_f, 6)


def _invalid_cases(entity: Entity, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Payloads that must be rejected, each with a short case name (for parametrized tests)."""
    cases: list[dict[str, Any]] = []

    def add(name: str, bad: dict[str, Any]) -> None:
        cases.append({"case": name, "payload": repr(bad), "argv": repr(_argv(entity, bad))})

    def case(name: str, field: str, value: Any) -> None:
        add(name, {**payload, field: value})

    for f in entity.fields:
        if f.required and f.default is None:
            add(f"missing-{kebab_case(f.name)}", {k: v for k, v in payload.items() if k != f.name})
        if f.max_length is not None:
            case(f"{kebab_case(f.name)}-too-long", f.name, "x" * (f.max_length + 1))
        if f.min is not None:
            case(
                f"{kebab_case(f.name)}-below-min",
                f.name,
                (math.ceil(f.min) - 1) if f.type == "int" else f.min - 1,
            )
        if f.max is not None:
            case(
                f"{kebab_case(f.name)}-above-max",
                f.name,
                (math.floor(f.max) + 1) if f.type == "int" else f.max + 1,
            )
        if f.type in ("int", "float"):
            case(f"{kebab_case(f.name)}-not-a-number", f.name, "not-a-number")
        if f.type in ("date", "datetime"):
            case(f"{kebab_case(f.name)}-not-a-{f.type}", f.name, f"not-a-{f.type}")
    return cases


def _field_call(f: EntityField, default: str | None) -> str:
    """``= <default>`` or ``= Field(...)`` for a pydantic field declaration, or "" when nothing is needed."""
    args: list[str] = []
    if default is not None:
        args.append(f"default={default}")
    if f.max_length is not None:
        args.append(f"max_length={f.max_length}")
    if f.min is not None:
        args.append(f"ge={_num(f)(f.min)!r}")
    if f.max is not None:
        args.append(f"le={_num(f)(f.max)!r}")
    if f.description:
        args.append(f"description={f.description!r}")
    if not args:
        return ""
    if args == [f"default={default}"]:
        return f" = {default}"
    return f" = Field({', '.join(args)})"


def _num(f: EntityField) -> Any:
    return int if f.type == "int" else float


def _default_literal(f: EntityField) -> str | None:
    if f.default is None:
        return "None" if not f.required else None
    value = f.default
    if f.type == "date":
        return f"date.fromisoformat({str(value)!r})"
    if f.type == "datetime":
        return f"datetime.fromisoformat({str(value).replace(' ', 'T')!r})"
    if f.type == "float":
        return repr(float(value))
    return repr(value)


def _field_context(f: EntityField) -> dict[str, Any]:
    py = _PY_TYPES[f.type]
    nullable = not f.required
    annotation = f"{py} | None" if nullable else py
    column = (
        f'"{f.name}" {_SQL_TYPES[f.type]}'
        + (" NOT NULL" if f.required else "")
        + (" UNIQUE" if f.unique else "")
    )
    sample0, sample1 = sample_value(f, 0), sample_value(f, 1)
    return {
        "name": f.name,
        "type": f.type,
        "py_type": py,
        "annotation": annotation,
        "description": f.description,
        "required": f.required,
        "nullable": nullable,
        "unique": f.unique,
        "max_length": f.max_length,
        "min": f.min,
        "max": f.max,
        "has_default": f.has_default,
        "input_required": f.required and f.default is None,
        "decl": f"{f.name}: {annotation}{_field_call(f, _default_literal(f))}",
        "update_decl": f"{f.name}: {py} | None{_field_call(f, 'None')}",
        "column": column,
        "flag": "--" + f.name.replace("_", "-"),
        "sample0": sample0,
        "sample1": sample1,
        "sample0_py": repr(sample0),
        "sample1_py": repr(sample1),
    }


def _argv(entity: Entity, payload: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for f in entity.fields:
        if f.name not in payload:
            continue
        flag = "--" + f.name.replace("_", "-")
        value = payload[f.name]
        if f.type == "bool":
            argv.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            argv += [flag, str(value)]
    return argv


def _entity_context(entity: Entity) -> dict[str, Any]:
    snake = snake_case(entity.name)
    plural = pluralize(snake)
    fields = [_field_context(f) for f in entity.fields]
    payload0 = {f.name: sample_value(f, 0) for f in entity.fields}
    payload1 = {f.name: sample_value(f, 1) for f in entity.fields}
    # The "update" test changes one field that is not unique-constrained when possible.
    changeable = next((f for f in entity.fields if not f.unique), entity.fields[0])
    return {
        "name": entity.name,
        "description": entity.description or f"A {entity.name}.",
        "snake": snake,
        "plural": plural,
        "slug": kebab_case(snake),
        "plural_slug": kebab_case(plural),
        "table": plural,
        "create_cls": f"{entity.name}Create",
        "update_cls": f"{entity.name}Update",
        "fields": fields,
        "field_names": [f.name for f in entity.fields],
        "not_null": [f.name for f in entity.fields if f.required],
        "unique_fields": [f.name for f in entity.fields if f.unique],
        "payload0": repr(payload0),
        "payload1": repr(payload1),
        "argv0": repr(_argv(entity, payload0)),
        "argv1": repr(_argv(entity, payload1)),
        "update_field": changeable.name,
        "update_value": repr(payload1[changeable.name]),
        "update_argv": repr(_argv(entity, {changeable.name: payload1[changeable.name]})),
        "invalid_cases": _invalid_cases(entity, payload0),
        "uses_date": any(f.type == "date" for f in entity.fields),
        "uses_datetime": any(f.type == "datetime" for f in entity.fields),
        # Whether `Field` must be imported: by the entity models, or also by the *Update models.
        "uses_field": any("= Field(" in fc["decl"] for fc in fields),
        "uses_field_any": any("= Field(" in fc["decl"] or "= Field(" in fc["update_decl"] for fc in fields),
    }


def _call_context(text: str) -> dict[str, Any]:
    method, path, body = parse_http_call(text)
    return {"method": method, "path": path, "json": None if body is None else repr(body), "text": text}


def _example_context(example: FeatureExample, index: int) -> dict[str, Any]:
    """A feature example as playbooks render it into a test: calls and the expected answer as Python literals
    (an HTTP call's ``request``, or a command line's ``argv``)."""
    name = example.name or example.request or example.run or "example"
    test_name = f"test_example_{index}_" + (snake_case(name)[:40].strip("_") or "case")
    if example.run is not None:

        def literal(text: str | None) -> str | None:
            return None if text is None else repr(text.strip())

        return {
            "name": name,
            "test_name": test_name,
            "given": [repr(split_command(call)) for call in example.given],
            "argv": repr(split_command(example.run)),
            "exit": example.exit,
            "stdout": literal(example.stdout),
            "stderr": literal(example.stderr),
            "stdout_json": None if example.stdout_json is None else repr(example.stdout_json),
            "shown": _example_shown(example),
        }
    assert example.request is not None
    return {
        "name": name,
        "test_name": test_name,
        "given": [_call_context(call) for call in example.given],
        "request": _call_context(example.request),
        "status": example.status,
        "response": None if example.response is None else repr(example.response),
    }


def _example_shown(example: FeatureExample) -> list[str]:
    """A command-line example as plain-text lines for a docstring (the playbook escapes them with ``doc``),
    its output verbatim: small models copy a spacing they see beside the code more readily than one described
    in words."""
    assert example.run is not None
    scene = " and ".join(f"`{call}`" for call in example.given)
    head = (f"after {scene}, " if scene else "") + f"`{example.run}` exits {example.exit}"
    lines = []
    if example.stdout_json is not None:
        lines.append(f"{head} and prints JSON: {json.dumps(example.stdout_json)}")
    elif example.stdout is not None and example.stdout.strip():
        lines += [f"{head} and prints:", *(f"    {line}" for line in example.stdout.strip().splitlines())]
    elif example.stdout is not None:
        lines.append(f"{head} and prints nothing")
    else:
        lines.append(head)
    if example.stderr is not None:
        lines.append(f"    (stderr: {example.stderr.strip()})")
    return lines


def _response_model(response: Any, entities: list[dict[str, Any]]) -> str | None:
    """``E`` or ``list[E]`` when an example's response is an entity E (its fields and ``id``) or a list of them:
    declared as the route's ``response_model``, FastAPI turns SQLite rows (0/1, ISO text) into E's JSON."""
    rows = response if isinstance(response, list) else [response]
    if not rows or not all(isinstance(row, dict) for row in rows):
        return None
    for entity in entities:
        if all(set(row) == {"id", *entity["field_names"]} for row in rows):
            return f"list[{entity['name']}]" if isinstance(response, list) else entity["name"]
    return None


def _feature_routes(
    feature: Feature, crud: set[str], entities: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The HTTP routes a feature's examples call that the CRUD routes (``crud``: their paths with ``{id}``)
    do not provide: method, path, a function name, the query parameters and the entity the route returns
    (when the examples show one), for a skeleton to complete."""
    routes: dict[tuple[str, str], dict[str, Any]] = {}
    for example in feature.examples:
        if example.request is None:
            continue  # a command-line example
        for call in [*example.given, example.request]:
            method, path, _ = parse_http_call(call)
            route, _, query = path.partition("?")
            shape = "/".join("{id}" if part.isdigit() else part for part in route.split("/"))
            if shape in crud:
                continue
            entry = routes.setdefault(
                (method, route),
                {
                    "method": method.lower(),
                    "path": route,
                    "func": snake_case(route.rstrip("/").rsplit("/", 1)[-1]),
                    "params": {},
                    "response_model": None,
                },
            )
            if call is example.request and entry["response_model"] is None:
                entry["response_model"] = _response_model(example.response, entities or [])
            for pair in filter(None, query.split("&")):
                name, _, value = pair.partition("=")
                if name.isidentifier():
                    entry["params"].setdefault(name, []).append(value)
    for entry in routes.values():
        entry["params"] = [{"name": n, "type": _query_type(values)} for n, values in entry["params"].items()]
    return list(routes.values())


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _query_type(values: list[str]) -> str:
    """The Python type of a query parameter from the values the examples send: FastAPI then parses it, so
    the model compares dates with dates (a `str` here had small models compare `date < str`)."""
    if all(re.fullmatch(r"-?\d+", v) for v in values):
        return "int"
    if all(_ISO_DATE.match(v) for v in values):
        return "date"
    if all(v.lower() in ("true", "false") for v in values):
        return "bool"
    return "str"


_SIGNATURE_START = re.compile(r"^\s*`?(?P<name>[A-Za-z_]\w*)\(")


def _feature_signature(description: str, entity_names: list[str]) -> dict[str, Any] | None:
    """The function a library feature's description starts with (``name(params) -> type``), checked by
    parsing it as a Python declaration, and the entities it names (to import): a skeleton to complete.
    None when the description starts otherwise."""
    match = _SIGNATURE_START.match(description)
    if match is None:
        return None
    end = closing_bracket(description, match.end() - 1)
    if end is None:
        return None
    rest = description[end:]
    arrow = re.match(r"\s*->\s*", rest)
    returns = ""
    if arrow is not None:
        type_match = re.match(r"[\w.]+", rest[arrow.end() :])
        if type_match is not None:
            stop = arrow.end() + type_match.end()
            if rest[stop : stop + 1] == "[":
                closed = closing_bracket(rest, stop)
                stop = closed if closed is not None else stop
            returns = rest[arrow.end() : stop]
    declaration = description[match.start("name") : end] + (f" -> {returns}" if returns else "")
    try:
        ast.parse(f"def {declaration}: ...")
    except SyntaxError:
        return None
    used = set(re.findall(r"[A-Za-z_]\w*", declaration))
    return {
        "name": match["name"],
        "declaration": declaration,
        "imports": [name for name in entity_names if name in used],
    }


def _feature_command(feature: Feature) -> str:
    match = re.match(r"\s*`[\w.-]+\s+(?P<command>[a-z][\w-]*)", feature.description)
    return match["command"] if match else feature.id


def _command_arguments(feature: Feature, command: str) -> list[dict[str, Any]] | None:
    """The sub-command's arguments, read off the spec: positionals named by the usage in the description
    (`` `prog resolve CODE` ``), options as the examples' command lines use them (``--json`` alone is a flag,
    ``--top 3`` takes an int). None when the examples never run the command or disagree with each other or
    the usage; the model then declares the arguments itself."""
    usage = re.search(rf"`[\w.-]+\s+{re.escape(command)}((?:\s+[A-Z][A-Z0-9_]*)*)\b", feature.description)
    names = usage[1].split() if usage else []
    lines = [
        argv[1:]
        for example in feature.examples
        for call in ([*example.given, example.run] if example.run is not None else [])
        if (argv := split_command(call))[0] == command
    ]
    if not lines:
        return None
    options: dict[str, list[str | None]] = {}
    given: list[list[str]] = [[] for _ in names]  # each positional's values
    for argv in lines:
        positionals = 0
        index = 0
        while index < len(argv):
            token = argv[index]
            if token.startswith("--") and len(token) > 2:
                value = (
                    argv[index + 1]
                    if index + 1 < len(argv) and not argv[index + 1].startswith("--")
                    else None
                )
                # A value after a flag and a positional look alike: the usage's count of positionals decides.
                if value is not None and positionals + (len(argv) - index - 2) < len(names):
                    value = None
                options.setdefault(token, []).append(value)
                index += 1 if value is None else 2
            else:
                if positionals < len(names):
                    given[positionals].append(token)
                positionals += 1
                index += 1
        if positionals != len(names):
            return None

    def kind(values: list[Any]) -> str:
        return "int" if values and all(re.fullmatch(r"-?\d+", str(v)) for v in values) else "str"

    arguments: list[dict[str, Any]] = [
        {"flag": name.lower(), "dest": name.lower(), "type": kind(values), "action": None}
        for name, values in zip(names, given, strict=True)
    ]
    for flag, values in options.items():
        dest = flag[2:].replace("-", "_")
        arguments.append({"flag": flag, "dest": dest, "type": "str", "action": None})
        if all(v is None for v in values):
            arguments[-1].update(type="bool", action="store_true")
        elif all(v is not None for v in values):
            arguments[-1]["type"] = kind(values)
        else:
            return None
    # `args.in` would not even parse: such names are left to the model (argparse needs a `dest=` then).
    if not all(a["dest"].isidentifier() and not keyword.iskeyword(a["dest"]) for a in arguments):
        return None
    return arguments


def _python_check(text: str) -> str | None:
    """An acceptance check that is already a Python comparison on a call (``f("b a b", top=1) == [("b", 2)]``),
    ready to assert; None for prose."""
    candidate = text.strip().rstrip(".").strip().strip("`")
    try:
        node = ast.parse(candidate, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Compare) and any(isinstance(n, ast.Call) for n in ast.walk(node)):
        return candidate
    return None


def _feature_context(
    feature: Feature,
    package: str,
    stack: str,
    crud: set[str] | None = None,
    entities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    snake = snake_case(feature.id)
    # Library features are public modules of the package; app features plug into features/.
    module = f"{package}/{snake}.py" if stack == "python-library" else f"{package}/features/{snake}.py"
    command = _feature_command(feature) if stack == "python-cli" else None
    first = feature.description.strip().split("\n", 1)[0]
    title = first if len(first) <= 80 else first[:77].rstrip() + "..."
    return {
        "id": feature.id,
        "examples": [_example_context(e, i) for i, e in enumerate(feature.examples, 1)],
        "routes": _feature_routes(feature, crud or set(), entities),
        "snake": snake,
        "title": title,
        "description": feature.description.strip(),
        "acceptance": list(feature.acceptance),
        # Each check with its assertion, when the spec wrote it as Python (rendered into the tests as is).
        "checks": [{"text": a, "python": _python_check(a)} for a in feature.acceptance],
        # A command-line feature's sub-command: the word after the program's name in its description.
        "command": command,
        "arguments": _command_arguments(feature, command) if command is not None else None,
        "signature": _feature_signature(feature.description, [e["name"] for e in entities or []])
        if stack == "python-library"
        else None,
        "module": module,
        "module_name": module.removesuffix(".py").replace("/", "."),
        "test_path": f"tests/test_feature_{snake}.py",
    }


def _crud_paths(entities: list[dict[str, Any]]) -> set[str]:
    return {p for e in entities for p in (f"/{e['plural_slug']}", f"/{e['plural_slug']}/{{id}}")}


def spec_context(spec: AppSpec | TaskSpec) -> dict[str, Any]:
    """Every name a playbook template may use (see promptkit/playbooks/README.md)."""
    base: dict[str, Any] = {
        "spec": spec.model_dump(mode="json"),
        "name": spec.name,
        "summary": spec.summary.strip(),
        "constraints": list(spec.constraints),
        "spec_yaml": spec.to_yaml(),
    }
    if isinstance(spec, TaskSpec):
        target_file = spec.target_file
        stem = snake_case(target_file.rsplit("/", 1)[-1].removesuffix(".py"))
        return {
            **base,
            "task": spec.task,
            "target": spec.target,
            "target_file": target_file,
            "goal": spec.goal,
            "files": list(spec.files),
            "tests": list(spec.tests),
            "module_name": target_file.removesuffix(".py").replace("/", "."),
            "pin_test": f"tests/test_{stem}_behaviour.py",
            "entities": [],
            "features": [],
        }
    entities = [_entity_context(e) for e in spec.entities]
    return {
        **base,
        "stack": spec.stack,
        "pkg": spec.package,
        "title": spec.name.replace("-", " ").title(),
        "env_prefix": spec.package.upper(),
        "entities": entities,
        "field_names": sorted({name for e in entities for name in e["field_names"]}),
        "features": [
            _feature_context(f, spec.package, spec.stack, _crud_paths(entities), entities)
            for f in spec.features
        ],
        "uses_date": any(e["uses_date"] for e in entities),
        "uses_datetime": any(e["uses_datetime"] for e in entities),
        "uses_field": any(e["uses_field"] for e in entities),
        "uses_field_any": any(e["uses_field_any"] for e in entities),
    }
