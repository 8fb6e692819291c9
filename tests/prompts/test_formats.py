"""The fenced-files answer format: what small models write, parsed into typed files."""

from __future__ import annotations

import pytest

from promptkit.prompts import FilesAnswer, sections_format


def test_path_lines_in_every_common_style_name_their_blocks() -> None:
    text = (
        "Here is the change.\n\n"
        "app/models.py\n```python\nclass A:\n    pass\n```\n\n"
        "**app/db.py**\n```python\nX = 1\n```\n"
        "### FILE: tests/test_a.py\n```\ndef test_a():\n    assert True\n```\n"
        "`README.md`:\n~~~markdown\n# Title\n~~~\n"
        "That is all."
    )
    answer = FilesAnswer.parse_text(text)
    assert [f.path for f in answer.files] == ["app/models.py", "app/db.py", "tests/test_a.py", "README.md"]
    assert answer.files[0].content == "class A:\n    pass\n"
    assert answer.files[0].language == "python" and answer.files[2].language is None
    assert answer.notes == "Here is the change.\nThat is all."


def test_a_block_without_a_path_line_is_unnamed_unless_its_first_comment_names_it() -> None:
    unnamed = FilesAnswer.parse_text("Sure!\n```python\nprint(1)\n```")
    assert unnamed.files[0].path is None and unnamed.files[0].content == "print(1)\n"
    commented = FilesAnswer.parse_text("```python\n# app/cli.py\nprint(1)\n```")
    assert commented.files[0].path == "app/cli.py"
    assert commented.files[0].content == "# app/cli.py\nprint(1)\n", "the comment stays in the file"


def test_prose_before_a_block_is_not_taken_for_a_path() -> None:
    answer = FilesAnswer.parse_text("The fix is below:\n```python\nx = 1\n```")
    assert answer.files[0].path is None and answer.notes == "The fix is below:"


def test_code_containing_fence_like_text_inside_a_string_keeps_the_block_whole() -> None:
    text = 'a.py\n```python\ndoc = """\n  ``` not a fence at line start? it is indented\n"""\n```'
    answer = FilesAnswer.parse_text(text)
    assert answer.files[0].content.count("\n") == 3


def test_no_block_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no fenced code block"):
        FilesAnswer.parse_text("def f():\n    return 1")


def test_the_json_shape_is_accepted_too() -> None:
    answer = FilesAnswer.parse_text('{"files": [{"path": "a.py", "content": "x = 1\\n"}], "notes": "n"}')
    assert answer.files[0].path == "a.py" and answer.notes == "n"


def test_to_text_round_trips() -> None:
    answer = FilesAnswer.model_validate(
        {
            "files": [{"path": "a/b.py", "content": "x = 1"}, {"path": "c.toml", "content": "[a]\n"}],
            "notes": "ok",
        }
    )
    text = answer.to_text()
    assert text.startswith("a/b.py\n```python\nx = 1\n```") and "c.toml\n```toml\n" in text
    again = FilesAnswer.parse_text(text)
    assert [(f.path, f.content) for f in again.files] == [("a/b.py", "x = 1\n"), ("c.toml", "[a]\n")]
    assert again.notes == "ok"


DEBUG = sections_format("debug_answer", {"diagnosis": "text", "fix": "code", "explanation": "text"})


def test_sections_in_the_styles_models_write_them() -> None:
    text = (
        "**Diagnosis:** the range stops one short.\n\n"
        "## Fix\n```python\ndef f(xs):\n    # Explanation: a comment, not a heading\n    return xs\n```\n\n"
        "Explanation: range's end is exclusive."
    )
    answer = DEBUG.parse_text(text)
    assert answer.diagnosis == "the range stops one short."
    assert answer.fix == "def f(xs):\n    # Explanation: a comment, not a heading\n    return xs\n"
    assert answer.explanation == "range's end is exclusive."
    assert DEBUG.parse_text(answer.to_text()) == answer


def test_a_code_section_without_a_heading_is_found_by_its_fence() -> None:
    answer = DEBUG.parse_text("## Diagnosis\nx\n\n```python\ny = 1\n```\n\n## Explanation\nz")
    assert answer.fix == "y = 1\n"


def test_missing_sections_are_named() -> None:
    with pytest.raises(ValueError, match="missing section\\(s\\): Explanation"):
        DEBUG.parse_text("## Diagnosis\nx\n## Fix\n```\ny\n```")


def test_sections_need_text_or_code_fields() -> None:
    with pytest.raises(ValueError, match="'text' or 'code'"):
        sections_format("bad", {"fix": "python"})
    assert "## Fix\n```" in DEBUG.instructions
