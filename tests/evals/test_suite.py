"""Suite and dataset validation: every error names file, line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from promptkit.errors import EvalError
from promptkit.evals import DatasetSpec, Suite, load_dataset, load_suite

DATA = "\n".join(json.dumps({"id": f"i{n}", "q": f"{n}+{n}", "a": str(2 * n)}) for n in range(3)) + "\n"

GOOD = """\
name: arithmetic
variants:
  - name: plain
    template: few_shot
    examples: {strategy: first_k, k: 0}
    inputs: {instruction: Compute.}
  - {name: shots, template: few_shot, inputs: {instruction: Compute.}}
models: [m1]
dataset: {path: data.jsonl, id_field: id, inputs: {input: q}, expected: a}
scorers:
  - {type: numeric}
  - {type: latency, max_s: 5}
repeats: 2
thresholds: {pass_rate: 0.5, numeric: 0.5}
"""


def write(tmp_path: Path, text: str, data: str = DATA) -> Path:
    (tmp_path / "data.jsonl").write_text(data, encoding="utf-8")
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(EvalError) as info:
        load_suite(write(tmp_path, text))
    return str(info.value)


def test_good_suite_loads(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.name == "arithmetic"
    assert [v.name for v in suite.spec.variants] == ["plain", "shots"]
    assert [s.name for s in suite.build_scorers()] == ["numeric", "latency"]
    items = suite.items()
    assert [i.id for i in items] == ["i0", "i1", "i2"]
    assert items[1].inputs == {"input": "1+1"} and items[1].expected == "2"
    assert items[1].location.endswith("data.jsonl:2")
    assert suite.model_names() == ["m1"]


def test_hash_changes_with_the_dataset(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    before = load_suite(path).hash
    (tmp_path / "data.jsonl").write_text(DATA + json.dumps({"id": "x", "q": "1", "a": "1"}) + "\n")
    assert load_suite(path).hash != before


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ("repeats: 2", "repeats: 0", ":13: repeats", "greater than or equal to 1"),
        ("repeats: 2", "repeats: 2\ncolour: red", ":14: colour", "is not a known field"),
        (
            "    template: few_shot\n",
            "    template: no_such_template\n",
            ":4: variants[0].template",
            "no_such_template",
        ),
        (
            "    examples: {strategy: first_k, k: 0}",
            "    examples: {strategy: first_k, k: -1}",
            ":5: variants[0].examples.k",
            "greater than or equal to 0",
        ),
        ("  - {type: latency, max_s: 5}", "  - {type: latency, max_secs: 5}", ":12: scorers[1]", "max_s"),
        ("  - {type: numeric}", "  - {type: bleu}", ":11: scorers[0].type", "unknown scorer type 'bleu'"),
        ("  - {type: numeric}", "  - {type: regex, pattern: '('}", ":11: scorers[0]", "does not compile"),
        ("numeric: 0.5}", "bleu: 0.5}", ":14: thresholds.bleu", "unknown gate 'bleu'"),
        ("models: [m1]", "models: [m1]\nrouter: promptkit.toml", ":1", "exactly one of models"),
        ("  - {name: shots,", "  - {name: plain,", ":7: variants[1].name", "duplicate variant name 'plain'"),
        (
            "  - {type: latency, max_s: 5}",
            "  - {type: numeric}",
            ":12: scorers[1]",
            "two scorers are named 'numeric'",
        ),
        (
            "  - {type: latency, max_s: 5}",
            "  - {type: code_exec, k: [1, 5]}",
            ":12: scorers[1].k",
            "pass@5 needs at least 5 samples",
        ),
        (
            "dataset: {path: data.jsonl,",
            "dataset: {path: data.jsonl, sheet: 1,",
            ":9: dataset.sheet",
            "is not a known field",
        ),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, where: str, message: str
) -> None:
    assert old in GOOD
    text = error_of(tmp_path, GOOD.replace(old, new, 1))
    assert f"suite.yaml{where}" in text
    assert message in text


def test_missing_required_field_and_bad_yaml(tmp_path: Path) -> None:
    text = error_of(tmp_path, GOOD.replace("name: arithmetic\n", ""))
    assert "suite.yaml:1: name" in text and "required" in text
    text = error_of(tmp_path, GOOD.replace("repeats: 2", "repeats: [2"))
    assert "suite.yaml:" in text and "invalid YAML" in text


def test_dataset_errors_name_the_data_file_line(tmp_path: Path) -> None:
    bad = DATA + "{not json\n"
    with pytest.raises(EvalError, match=r"data.jsonl:4: invalid JSON"):
        load_dataset(DatasetSpec(path=str(write(tmp_path, GOOD, bad).parent / "data.jsonl")))
    missing = DATA + json.dumps({"id": "i9", "q": "1"}) + "\n"
    suite = load_suite(write(tmp_path, GOOD, missing))
    with pytest.raises(EvalError, match=r"data.jsonl:4: a"):
        suite.items()
    dup = DATA + json.dumps({"id": "i0", "q": "1", "a": "1"}) + "\n"
    with pytest.raises(EvalError, match=r"data.jsonl:4: duplicate item id 'i0' \(first at .*data.jsonl:1\)"):
        load_suite(write(tmp_path, GOOD, dup)).items()


def test_csv_yaml_json_and_gzip_datasets(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,q,a\nx,1+1,2\ny,2+2,4\n", encoding="utf-8")
    items = load_dataset(DatasetSpec(path="d.csv", id_field="id", expected="a"), base=tmp_path)
    assert [(i.id, i.inputs, i.expected, i.location[-7:]) for i in items] == [
        ("x", {"q": "1+1"}, "2", "d.csv:2"),
        ("y", {"q": "2+2"}, "4", "d.csv:3"),
    ]
    (tmp_path / "d.yaml").write_text("- {q: a, nested: {x: 1}}\n- {q: b, nested: {x: 2}}\n", encoding="utf-8")
    items = load_dataset(
        DatasetSpec(path="d.yaml", inputs={"input": "q"}, expected="nested.x"), base=tmp_path
    )
    assert [(i.id, i.inputs, i.expected) for i in items] == [
        ("0", {"input": "a"}, 1),
        ("1", {"input": "b"}, 2),
    ]
    assert items[1].location.endswith("d.yaml:2")
    (tmp_path / "d.json").write_text(json.dumps([{"q": 1}, {"q": 2}, {"q": 3}]), encoding="utf-8")
    assert len(load_dataset(DatasetSpec(path="d.json", limit=2), base=tmp_path)) == 2
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(DATA)
    assert [i.id for i in load_dataset(DatasetSpec(path="d.jsonl.gz", id_field="id"), base=tmp_path)] == [
        "i0",
        "i1",
        "i2",
    ]
    with pytest.raises(EvalError, match="cannot tell the dataset format"):
        load_dataset(DatasetSpec(path="d.txt"), base=tmp_path)
    (tmp_path / "bad.csv").write_text("a,b\n1,2,3\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"bad.csv:2: the row has more cells"):
        load_dataset(DatasetSpec(path="bad.csv"), base=tmp_path)


def test_from_dict_names_the_field() -> None:
    with pytest.raises(EvalError, match=r"suite: variants"):
        Suite.from_dict(
            {"name": "x", "models": ["m"], "dataset": {"path": "d.jsonl"}, "scorers": [{"type": "exact"}]}
        )


def test_a_json_suite_reads_like_yaml_and_names_its_lines(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(GOOD)
    (tmp_path / "data.jsonl").write_text(DATA, encoding="utf-8")
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    assert load_suite(path).name == "arithmetic"
    data["repeats"] = 0
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if '"repeats"' in text)
    with pytest.raises(EvalError, match=rf"suite\.json:{line}: repeats: .*greater than or equal to 1"):
        load_suite(path)


def test_a_yaml_dataset_error_is_an_eval_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("- {q: a}\n- {q: b\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"d\.yaml:\d+: invalid YAML"):
        load_dataset(DatasetSpec(path="d.yaml"), base=tmp_path)
