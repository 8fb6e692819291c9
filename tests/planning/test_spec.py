"""App and task specs: loading, derived values, and errors that name file, line and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from promptkit.errors import SpecError
from promptkit.planning import AppSpec, TaskSpec, load_spec, parse_spec

from .conftest import EXAMPLE_SPECS

Write = Callable[[str, str], Path]

GOOD = """\
name: shop-api
summary: A shop.
stack: python-fastapi-sqlite
entities:
  - name: OrderLine
    fields:
      - name: sku
        type: str
        unique: true
      - name: quantity
        type: int
        min: 1
features:
  - id: totals
    description: GET /totals sums the quantities.
"""


def test_examples_load_as_app_specs():
    stacks = {}
    for path in EXAMPLE_SPECS:
        spec = load_spec(path)
        assert isinstance(spec, AppSpec)
        stacks[spec.stack] = spec
    assert set(stacks) == {"python-fastapi-sqlite", "python-cli", "python-library"}


def test_package_is_derived_from_the_name(write: Write):
    spec = load_spec(write("shop.yaml", GOOD))
    assert isinstance(spec, AppSpec)
    assert spec.package == "shop_api"
    assert spec.entities[0].fields[0].unique is True
    assert spec.entities[0].fields[1].required is True


def test_explicit_package_is_kept(write: Write):
    spec = load_spec(write("shop.yaml", GOOD + "package: shopkeeper\n"))
    assert isinstance(spec, AppSpec) and spec.package == "shopkeeper"


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        (
            "        type: int\n",
            "        type: integer\n",
            ":11: entities[0].fields[1].type",
            "must be one of",
        ),
        ("  - name: OrderLine", "  - name: order_line", ":5: entities[0].name", "PascalCase"),
        ("      - name: sku", "      - name: Sku", ":7: entities[0].fields[0].name", "snake_case"),
        ("      - name: sku", "      - name: id", ":7: entities[0].fields[0].name", "reserved"),
        (
            "        min: 1\n",
            "        min: 1\n        max_length: 3\n",
            ":13: entities[0].fields[1].max_length",
            "only str",
        ),
        (
            "        min: 1\n",
            "        min: 5\n        max: 2\n",
            ":12: entities[0].fields[1].min",
            "greater than max",
        ),
        (
            "        min: 1\n",
            "        min: 1\n        default: 0\n",
            ":13: entities[0].fields[1].default",
            "below min",
        ),
        (
            "        min: 1\n",
            "        min: 1\n        default: lots\n",
            ":13: entities[0].fields[1].default",
            "not a valid int",
        ),
        (
            "        min: 1\n",
            "        min: 1\n        colour: red\n",
            ":13: entities[0].fields[1].colour",
            "not a known field",
        ),
        ("name: shop-api", "name: Shop API", ":1: name", "slug"),
        ("stack: python-fastapi-sqlite", "stack: rails", ":3: stack", "must be one of"),
        ("  - id: totals", "  - id: Totals!", ":14: features[0].id", "slug"),
        (
            "    description: GET /totals sums the quantities.\n",
            "    description: GET /totals sums the quantities.\n    examples:\n      - request: FETCH /totals\n",
            ":17: features[0].examples[0].request",
            "must look like 'POST /path {json body}'",
        ),
        (
            "    description: GET /totals sums the quantities.\n",
            "    description: GET /totals sums the quantities.\n    examples:\n      - request: GET /totals\n"
            "        given: ['POST /items {not json}']\n",
            ":18: features[0].examples[0].given",
            "the body is not JSON",
        ),
        (
            "    description: GET /totals sums the quantities.\n",
            '    description: GET /totals sums the quantities.\n    examples:\n      - run: "totals \'x"\n',
            ":17: features[0].examples[0].run",
            "No closing quotation",
        ),
        (
            "    description: GET /totals sums the quantities.\n",
            "    description: GET /totals sums the quantities.\n    examples:\n      - run: totals\n"
            "        request: GET /totals\n",
            ":17: features[0].examples[0]",
            "either `request:` (an HTTP call) or `run:` (a command line)",
        ),
        (
            "    description: GET /totals sums the quantities.\n",
            "    description: GET /totals sums the quantities.\n    examples:\n      - run: totals\n"
            "        status: 404\n",
            ":17: features[0].examples[0]",
            "status and response belong to `request:` examples",
        ),
        (
            "    description: GET /totals sums the quantities.\n",
            "    description: GET /totals sums the quantities.\n    examples:\n      - run: totals\n",
            ":17: features[0].examples[0].run",
            "a python-fastapi-sqlite app's examples are HTTP calls (`request:`)",
        ),
    ],
)
def test_errors_name_file_line_and_field(write: Write, old: str, new: str, where: str, words: str):
    assert old in GOOD
    path = write("shop.yaml", GOOD.replace(old, new))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}{where}: "), message
    assert words in message


def test_duplicate_field_points_at_the_second_one(write: Write):
    text = GOOD.replace(
        "      - name: quantity", "      - name: sku\n        type: str\n      - name: quantity"
    )
    with pytest.raises(SpecError, match=r":10: entities\[0\]\.fields\[1\]\.name: duplicate field 'sku'"):
        load_spec(write("shop.yaml", text))


def test_missing_required_key(write: Write):
    with pytest.raises(SpecError, match=r"shop\.yaml:\d+: stack: is required"):
        load_spec(write("shop.yaml", GOOD.replace("stack: python-fastapi-sqlite\n", "")))


def test_app_stacks_need_an_entity(write: Write):
    text = "name: x\nsummary: s\nstack: python-cli\n"
    with pytest.raises(SpecError, match="entities: the python-cli stack needs at least one entity"):
        load_spec(write("x.yaml", text))
    library = load_spec(write("y.yaml", text.replace("python-cli", "python-library")))
    assert isinstance(library, AppSpec) and library.entities == []


def test_library_feature_may_not_replace_a_scaffold_module(write: Write):
    text = "name: x\nsummary: s\nstack: python-library\nfeatures:\n  - id: models\n    description: d\n"
    with pytest.raises(SpecError, match=r":5: features\[0\]\.id: .*models\.py"):
        load_spec(write("x.yaml", text))


def test_invalid_yaml_is_a_spec_error_with_a_line(write: Write):
    with pytest.raises(SpecError, match=r"bad\.yaml:4: invalid YAML.*line 3"):
        load_spec(write("bad.yaml", "name: x\nsummary: s\nstack: [python-cli\n"))


def test_json_specs_report_lines_too(write: Write):
    data = {
        "name": "x",
        "summary": "s",
        "stack": "python-cli",
        "entities": [{"name": "Link", "fields": [{"name": "url", "type": "uri"}]}],
    }
    path = write("x.json", json.dumps(data, indent=2))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    line = json.dumps(data, indent=2).splitlines().index('          "type": "uri"') + 1
    assert str(caught.value).startswith(f"{path}:{line}: entities[0].fields[0].type: must be one of")


def test_broken_json_names_the_line(write: Write):
    with pytest.raises(SpecError, match=r"x\.json:3: invalid JSON"):
        load_spec(write("x.json", '{\n "name": "x",\n "summary": }\n'))


def test_missing_file():
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec("/nonexistent/spec.yaml")


def test_task_specs(write: Write):
    spec = load_spec(
        write(
            "fix.yaml",
            "task: fix-failing-test\nname: fix-it\nsummary: s\ntarget: tests/test_a.py::test_b\nfiles: [a.py]\n",
        )
    )
    assert isinstance(spec, TaskSpec)
    assert spec.target_file == "tests/test_a.py" and spec.tests == ["tests"]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("task: fix-failing-test\nname: f\nsummary: s\ntarget: t.py\n", ":1: files", "must list the files"),
        ("task: refactor-module\nname: f\nsummary: s\ntarget: a.py\n", ":1: goal", "needs a goal"),
        ("task: refactor-module\nname: f\nsummary: s\ntarget: tests\ngoal: g\n", ":4: target", "Python file"),
        (
            "task: fix-failing-test\nname: f\nsummary: s\ntarget: t.py\nfiles: [../x.py]\n",
            ":5: files",
            "inside the workspace",
        ),
        (
            "task: fix-failing-test\nname: f\nsummary: s\ntarget: /abs/t.py\nfiles: [x.py]\n",
            ":4: target",
            "inside the workspace",
        ),
        ("task: rewrite\nname: f\nsummary: s\ntarget: t.py\n", ":1: task", "must be one of"),
    ],
)
def test_task_spec_errors(write: Write, text: str, where: str, words: str):
    path = write("task.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}{where}"), str(caught.value)
    assert words in str(caught.value)


def test_parse_spec_from_text_and_dict():
    spec = parse_spec(GOOD, source="inline.yaml")
    assert isinstance(spec, AppSpec) and spec.name == "shop-api"
    with pytest.raises(SpecError, match=r"inline\.yaml:3: stack"):
        parse_spec(GOOD.replace("python-fastapi-sqlite", "php"), source="inline.yaml")
    with pytest.raises(SpecError, match=r"^spec: name: "):
        parse_spec({"name": "Bad Name", "summary": "s", "stack": "python-cli"})


def test_a_library_feature_with_examples_is_told_to_write_python_checks():
    from promptkit.planning import parse_spec

    data = {
        "name": "lib",
        "summary": "A library.",
        "stack": "python-library",
        "features": [{"id": "f", "description": "f(x) doubles x.", "examples": [{"run": "f 2"}]}],
    }
    with pytest.raises(
        SpecError, match=r"features\[0\]\.examples\[0\]: a python-library feature has no examples"
    ):
        parse_spec(data)
