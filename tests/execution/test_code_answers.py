"""Code in answers and the docstring-examples check (the visible tests a cascade verifies with)."""

from __future__ import annotations

import asyncio

import pytest

from promptkit.execution import DocExample, DocstringExamples, docstring_examples, extract_code

PROMPT = '''from typing import List


def below(numbers: List[int], limit: int) -> List[int]:
    """Keep the numbers below limit, in order.
    >>> below([1, 5, 2], 3)
    [1, 2]
    >>> below([], 3)
    []
    below([4], 9) == [4]
    below(xs, n) -> the numbers of xs below n
    """
'''
RIGHT = "def below(numbers, limit):\n    return [n for n in numbers if n < limit]\n"
WRONG = "def below(numbers, limit):\n    return [n for n in numbers if n > limit]\n"


def test_doctest_and_arrow_examples_are_found_and_definitions_are_not() -> None:
    found = docstring_examples(PROMPT, "below")
    assert found == [
        DocExample("below([1, 5, 2], 3)", "[1, 2]", 6),
        DocExample("below([], 3)", "[]", 8),
        DocExample("below([4], 9)", "[4]", 10),
    ]
    assert docstring_examples(PROMPT, "missing") == []
    assert docstring_examples("def f(:\n", "f") == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("f(1, 2) ➞ 3", ("f(1, 2)", "3")),
        ("f('a') => true", ("f('a')", "True")),
        ("f([1, (2, 3)]) should return [3]", ("f([1, (2, 3)])", "[3]")),
        ("f(x) == 3", None),  # a name, not a value: a definition
        ("f(1) == something else", None),
    ],
)
def test_arrow_forms(line: str, expected: tuple[str, str] | None) -> None:
    found = docstring_examples(f'def f(x):\n    """Doc.\n    {line}\n    """\n', "f")
    assert [(e.source, e.expected) for e in found] == ([expected] if expected else [])


def test_a_value_written_on_the_prompt_line_is_split_off() -> None:
    found = docstring_examples('def f(x):\n    """\n    >>> f([1, 0]) [0, 1]\n    """\n', "f")
    assert [(e.source, e.expected) for e in found] == [("f([1, 0])", "[0, 1]")]


def test_extract_code_takes_an_unclosed_last_block() -> None:
    answer = "Here:\n```python\ndef g():\n    return 1\n"
    assert extract_code(answer, "g") == "def g():\n    return 1\n"
    assert extract_code("```python\nx = 1\n```\n```python\ndef g(): pass\n```", "g") == "def g(): pass\n"


def test_the_check_accepts_right_code_and_names_each_failing_example() -> None:
    check = DocstringExamples(PROMPT, "below")
    assert len(check.examples) == 3
    assert asyncio.run(check(f"```python\n{RIGHT}```")) is True
    verdict = asyncio.run(check(f"```python\n{WRONG}```"))
    assert verdict == (
        "2 of 3 docstring examples fail:\n"
        "line 6: below([1, 5, 2], 3) returned [5], expected [1, 2]\n"
        "line 10: below([4], 9) returned [], expected [4]"
    )


def test_exceptions_timeouts_and_missing_functions_are_rejected_with_the_reason() -> None:
    check = DocstringExamples(PROMPT, "below", timeout_s=2)
    raised = asyncio.run(check.check_code("def below(numbers, limit):\n    return numbers[9]\n"))
    assert "below([1, 5, 2], 3) raised IndexError" in raised
    # An answer without the function leaves the prompt's own stub, which returns None.
    stub = asyncio.run(check.check_code("def other():\n    pass\n"))
    assert stub.startswith("3 of 3 docstring examples fail:") and "returned None" in stub
    looping = asyncio.run(check.check_code("def below(numbers, limit):\n    while True:\n        pass\n"))
    assert looping.startswith("the docstring examples did not finish")
    # No examples: code that runs and defines the function passes; code that does not is still refused.
    bare = DocstringExamples('def h():\n    """Nothing to run."""\n', "h")
    assert bare.examples == []
    assert asyncio.run(bare.check_code("def h():\n    return 1\n")) is True
    assert "SyntaxError" in asyncio.run(bare.check_code("def h(:\n"))


def test_float_results_compare_with_a_tolerance() -> None:
    check = DocstringExamples('def f():\n    """\n    >>> f()\n    0.3\n    """\n', "f")
    assert asyncio.run(check.check_code("def f():\n    return 0.1 + 0.2\n")) is True


def test_the_workspace_verifier_checks_every_modules_examples(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from promptkit.execution import DocstringExamplesVerifier, verifier_from_spec

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "numbers.py").write_text(PROMPT + "    return [n for n in numbers if n < limit]\n")
    (tmp_path / "app" / "plain.py").write_text("def f():\n    return 1\n")
    verifier = verifier_from_spec("docstring-examples")
    assert isinstance(verifier, DocstringExamplesVerifier)
    result = asyncio.run(verifier(tmp_path))
    assert result.ok, result.details
    assert result.summary == "docstring-examples: 3 example(s) in 1 file(s) hold"

    (tmp_path / "app" / "numbers.py").write_text(PROMPT + "    return [n for n in numbers if n > limit]\n")
    result = asyncio.run(verifier(tmp_path))
    assert not result.ok and result.counts == {"examples": 3, "failed": 2}
    assert result.summary == (
        "docstring-examples: 2 of 3 example(s) fail; first: "
        "app/numbers.py:6: below([1, 5, 2], 3) returned [5], expected [1, 2]"
    )
    # A module that cannot be imported is a failure naming it; no examples at all is nothing to check.
    (tmp_path / "app" / "numbers.py").write_text("import missing_module\n" + PROMPT + "    return []\n")
    result = asyncio.run(verifier(tmp_path))
    assert "app/numbers.py:1: importing it raised ModuleNotFoundError" in result.summary
    only_plain = asyncio.run(DocstringExamplesVerifier("app/plain.py")(tmp_path))
    assert only_plain.ok and only_plain.counts == {"examples": 0}
