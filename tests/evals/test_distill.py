"""Dev/report splits, few-shot banks and `promptkit distill`: only verified dev answers reach a bank."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.cli import main
from promptkit.errors import EvalError
from promptkit.evals import SplitSpec, distill, load_bank, load_suite, run_suite, write_bank
from promptkit.evals._dataset import in_report_part
from promptkit.execution import extract_code

N_ITEMS = 40


def suite_text(split: str = "split: {part: report, report_fraction: 0.25, seed: 3}", bank: str = "") -> str:
    return textwrap.dedent(
        f"""\
        name: arithmetic
        variants:
          - {{name: plain, template: few_shot, examples: first_k:0, inputs: {{instruction: Compute.}}}}
          - {{name: banked, template: few_shot, examples: "similar_k:2", inputs: {{instruction: Compute.}}{bank}}}
        models: [m1]
        dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a, {split}}}
        scorers:
          - {{type: numeric}}
        concurrency: 2
        """
    )


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    rows = [{"id": f"i{n}", "q": f"{n} + {n + 1}", "a": str(2 * n + 1)} for n in range(N_ITEMS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(suite_text(bank=", example_bank: bank.jsonl"), encoding="utf-8")
    return tmp_path


def adder(calls: list[str], wrong_on: set[str] = frozenset()) -> FunctionBackend:  # type: ignore[assignment]
    """Answers "a + b"; adds one on the questions in ``wrong_on``."""

    def answer(request: GenerateRequest) -> str:
        question = request.messages[-1].content
        calls.append(question)
        a, b = (int(x) for x in question.split("+"))
        return str(a + b + (1 if question in wrong_on else 0))

    return FunctionBackend(answer, name="m1")


def test_the_split_is_stable_disjoint_and_covers_every_item(project: Path) -> None:
    ids = [f"i{n}" for n in range(N_ITEMS)]
    split = SplitSpec(part="report", report_fraction=0.25, seed=3)
    report = {i for i in ids if in_report_part(i, split)}
    assert 0 < len(report) < N_ITEMS
    suite = load_suite("suite.yaml")
    assert {item.id for item in suite.items()} == report
    # The dev part is the rest, whatever the file's order.
    rows = Path("data.jsonl").read_text().splitlines()
    Path("data.jsonl").write_text("\n".join(reversed(rows)) + "\n")
    Path("dev.yaml").write_text(suite_text(split="split: {part: dev, report_fraction: 0.25, seed: 3}"))
    dev_ids = {item.id for item in load_suite("dev.yaml").items()}
    assert dev_ids == set(ids) - report
    # Another seed draws another split.
    other = {i for i in ids if in_report_part(i, SplitSpec(part="report", report_fraction=0.25, seed=4))}
    assert other != report


def test_distill_keeps_only_verified_dev_answers_and_resumes(project: Path) -> None:
    calls: list[str] = []
    wrong = {"3 + 4", "10 + 11"}
    result = distill("suite.yaml", out="bank.jsonl", backends={"m1": adder(calls, wrong)}, progress=False)
    split = SplitSpec(part="report", report_fraction=0.25, seed=3)
    dev = [f"i{n}" for n in range(N_ITEMS) if not in_report_part(f"i{n}", split)]
    assert result.tried == len(dev) == len(calls)
    bank = load_bank("bank.jsonl")
    wrong_ids = {f"i{n}" for n in (3, 10)} & set(dev)
    assert set(bank.ids) == set(dev) - wrong_ids
    assert result.kept == len(bank.examples)
    assert all(
        ex["output"].strip() == str(int(ex["inputs"]["input"].split("+")[0]) * 2 + 1) for ex in bank.examples
    )
    assert bank.meta["source"] == "model:m1" and bank.meta["split"]["part"] == "dev"
    assert bank.meta["verified_by"] == ["numeric"]
    # A second run finds the finished run log and calls nothing.
    again = distill("suite.yaml", out="bank.jsonl", backends={"m1": adder(calls, wrong)}, progress=False)
    assert len(calls) == len(dev) and again.kept == result.kept


def test_a_variant_draws_its_examples_from_the_bank(project: Path) -> None:
    distill("suite.yaml", out="bank.jsonl", backends={"m1": adder([])}, progress=False)
    suite = load_suite("suite.yaml")
    banked = suite.template(suite.spec.variants[1])
    assert banked.hash != suite.template(suite.spec.variants[0]).hash
    item = suite.items()[0]
    inputs = {**item.inputs, **suite.spec.variants[1].inputs}
    rendered = banked.render(inputs, examples="similar_k:2").messages
    bank_questions = {ex["inputs"]["input"] for ex in load_bank("bank.jsonl").examples}
    shown = [m.content for m in rendered if m.role == "user"][:-1]
    assert len(shown) == 2 and all(any(q in text for q in bank_questions) for text in shown)
    prompts: list[int] = []

    def answer(request: GenerateRequest) -> str:
        prompts.append(sum(m.role == "user" for m in request.messages))
        a, b = (int(x) for x in request.messages[-1].content.split("+"))
        return str(a + b)

    log = run_suite(suite, backends={"m1": FunctionBackend(answer, name="m1")}, progress=False, cache=False)
    assert {r.item_id for r in log.results} == {i.id for i in suite.items()}
    # The banked variant's prompts show two examples as earlier turns; the plain variant's show none.
    assert sorted(prompts) == [1] * len(suite.items()) + [3] * len(suite.items())


def test_a_missing_bank_is_an_error_when_the_variant_runs(project: Path) -> None:
    suite = load_suite("suite.yaml")  # loading does not need the bank: distill builds it from this suite
    with pytest.raises(EvalError, match="no few-shot bank") as info:
        suite.template(suite.spec.variants[1])
    assert "suite.yaml:" in str(info.value) and "example_bank" in str(info.value)


def test_distill_refuses_a_suite_without_a_split(project: Path) -> None:
    Path("nosplit.yaml").write_text(suite_text(split="limit: 5"))
    with pytest.raises(EvalError, match="dev/report split") as info:
        distill("nosplit.yaml", out="bank.jsonl", backends={"m1": adder([])}, progress=False)
    assert "nosplit.yaml" in str(info.value)


def test_reference_answers_are_verified_too(project: Path) -> None:
    rows = [json.loads(line) for line in Path("data.jsonl").read_text().splitlines()]
    rows[0]["a"] = "999"  # a wrong reference is dropped, not trusted
    rows[1]["a"] = "999"
    for row in rows:
        row["ref"] = row["a"]
        row["a"] = str(sum(int(x) for x in row["q"].split("+")))
    Path("data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = distill("suite.yaml", out="ref.jsonl", reference="ref", progress=False)
    split = SplitSpec(part="report", report_fraction=0.25, seed=3)
    dev = {f"i{n}" for n in range(N_ITEMS) if not in_report_part(f"i{n}", split)}
    assert set(load_bank("ref.jsonl").ids) == dev - {"i0", "i1"}
    assert result.source == "reference:ref"


def test_a_prefilled_answer_is_stored_without_its_prefill(project: Path) -> None:
    Path("complete.yaml").write_text(
        textwrap.dedent(
            """\
            name: complete
            version: 1.0.0
            inputs: {code: {type: string}}
            messages:
              - {role: user, content: "Complete:\\n{{ code }}"}
              - role: assistant
                content: |
                  ```python
                  {{ code | trim }}
            """
        )
    )
    rows = [
        {
            "id": f"p{n}",
            "prompt": f'def f{n}(x):\n    """x plus {n}."""\n',
            "body": f"    return x + {n}\n",
            "test": f"def check(f):\n    assert f(1) == {n + 1}\n",
            "entry_point": f"f{n}",
        }
        for n in range(8)
    ]
    Path("code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    Path("code.yaml").write_text(
        textwrap.dedent(
            """\
            name: code
            variants: [{name: plain, template: complete.yaml, stop: ["```"]}]
            models: [m]
            dataset: {path: code.jsonl, id_field: id, inputs: {code: prompt}, split: {part: report, report_fraction: 0.3}}
            scorers: [{type: code_exec, prompt_field: prompt}]
            """
        )
    )
    result = distill("code.yaml", out="code-bank.jsonl", reference="body", progress=False)
    bank = load_bank("code-bank.jsonl")
    assert result.kept == len(bank.examples) > 0
    for ex, item_id in zip(bank.examples, bank.ids, strict=True):
        n = int(item_id[1:])
        assert ex["output"] == f"    return x + {n}\n"  # the continuation only: no fence, no signature


def test_the_cli_writes_a_bank_and_says_how_many_examples(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("data.jsonl").write_text(Path("data.jsonl").read_text())
    assert main(["distill", "suite.yaml", "--reference", "a", "--out", "cli-bank.jsonl", "-q"]) == 0
    out = capsys.readouterr().out
    kept = len(load_bank("cli-bank.jsonl").examples)
    assert f"{kept} verified example(s)" in out and "reference:a" in out


def test_a_malformed_bank_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    write_bank(path, {"template": "t"}, [{"id": "x", "inputs": {"q": "1"}, "output": "1"}])
    path.write_text(path.read_text() + '{"inputs": "nope", "output": 1}\n')
    with pytest.raises(EvalError, match='needs "inputs"') as info:
        load_bank(path)
    assert f"{path}:3" in str(info.value)
    path.write_text('{"id": 1}\n')
    with pytest.raises(EvalError, match="bank header"):
        load_bank(path)


def test_extract_code_can_take_the_last_block() -> None:
    answer = "```python\ndef f():\n    return 1\n```\nCheck: wrong.\n```python\ndef f():\n    return 2\n```\n"
    assert "return 1" in extract_code(answer, "f")
    assert "return 2" in extract_code(answer, "f", block="last")
    assert "return 2" in extract_code(answer, block="last")


def test_the_suite_hash_follows_the_bank(project: Path) -> None:
    distill("suite.yaml", out="bank.jsonl", backends={"m1": adder([])}, progress=False)
    before = load_suite("suite.yaml").hash
    bank = load_bank("bank.jsonl")
    write_bank(
        "bank.jsonl", bank.meta, [{"inputs": e["inputs"], "output": e["output"]} for e in bank.examples[1:]]
    )
    assert load_suite("suite.yaml").hash != before  # a resumed run cannot mix answers from two banks
