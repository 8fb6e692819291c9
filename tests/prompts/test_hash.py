from __future__ import annotations

from pathlib import Path

from promptkit.prompts import Template

from .conftest import GOOD

SOURCE = (GOOD / "review.yaml").read_text(encoding="utf-8")


def load(write_template, text: str, name: str = "t.yaml") -> Template:
    return Template.from_file(write_template(text, name))


def test_same_content_same_hash_across_loads_and_paths(write_template) -> None:
    a = load(write_template, SOURCE, "a/review.yaml")
    b = load(write_template, SOURCE, "b/other.yaml")
    assert a.hash == b.hash == Template.from_file(GOOD / "review.yaml").hash
    assert len(a.hash) == 64 and int(a.hash, 16) >= 0


def test_description_tags_and_version_do_not_change_the_hash(write_template) -> None:
    base = load(write_template, SOURCE)
    changed = (
        SOURCE.replace(
            "description: Review code and report findings as JSON.", "description: Something else entirely."
        )
        .replace("task: [review]", "task: [review, general]")
        .replace("version: 2.1.0", "version: 2.2.0")
    )
    assert changed != SOURCE
    assert load(write_template, changed, "c.yaml").hash == base.hash


def test_yaml_formatting_does_not_change_the_hash(write_template) -> None:
    base = load(write_template, SOURCE)
    reformatted = "# a comment\n" + SOURCE.replace("max_length: 200000", "max_length:   200000  # big")
    assert load(write_template, reformatted, "f.yaml").hash == base.hash


def test_changing_a_message_changes_the_hash(write_template) -> None:
    base = load(write_template, SOURCE)
    changed = SOURCE.replace("REVIEW-INSTRUCTION: You review", "REVIEW-INSTRUCTION: You audit")
    assert load(write_template, changed, "m.yaml").hash != base.hash


def test_changing_an_example_changes_the_hash(write_template) -> None:
    base = load(write_template, SOURCE)
    changed = SOURCE.replace("default sort compares strings", "sort() compares strings")
    assert load(write_template, changed, "e.yaml").hash != base.hash


def test_changing_inputs_schema_selection_or_priorities_changes_the_hash(write_template) -> None:
    base = load(write_template, SOURCE).hash
    edits = [
        ("maximum: 10", "maximum: 11"),
        ("maxLength: 500", "maxLength: 400"),
        ("strategy: all", "strategy: first_k"),
        ("examples_trim_priority: 5", "examples_trim_priority: 6"),
        ("trim_priority: 20", "trim_priority: 21"),
        ("must_match: [language]", "must_match: [language, code]"),
    ]
    hashes = set()
    for i, (old, new) in enumerate(edits):
        assert old in SOURCE, old
        hashes.add(load(write_template, SOURCE.replace(old, new), f"x{i}.yaml").hash)
    assert base not in hashes and len(hashes) == len(edits)


def test_rendered_prompt_carries_the_hash(tmp_path: Path) -> None:
    t = Template.from_file(GOOD / "review.yaml")
    assert t.render(language="python", code="x").hash == t.hash
