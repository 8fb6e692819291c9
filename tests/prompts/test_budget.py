from __future__ import annotations

import re

import pytest

from promptkit.errors import ContextBudgetError
from promptkit.prompts import Template, count_tokens

MARKER = re.compile(r"\[… (\d+) tokens trimmed to fit the context budget …\]")
LONG_CODE = "\n".join(f"line_{i:04d} = compute({i}) + offset_{i}" for i in range(600))


def test_fits_without_trimming_when_under_budget(review: Template) -> None:
    full = review.render(language="python", code="x = 1")
    budget = count_tokens(full.messages) + 10
    out = review.render(language="python", code="x = 1", budget=budget)
    assert out.messages == full.messages
    assert out.trimmed == []
    assert out.token_count == count_tokens(out.messages)


def test_examples_dropped_first_last_first_with_a_marker(review: Template) -> None:
    full = review.render(language="python", code="x = 1")
    two = review.render(language="python", code="x = 1", examples="first_k:2")
    # room for two examples (plus the marker), not three
    budget = count_tokens(two.messages) + 25
    assert budget < count_tokens(full.messages)
    out = review.render(language="python", code="x = 1", budget=budget)
    assert out.examples_used == 2
    assert out.token_count is not None and out.token_count <= budget
    contents = [m.content for m in out.messages]
    assert "def mean" in contents[1] and "rows.map" in contents[3]
    assert not any("with open(p)" in c for c in contents)  # the last example went first
    assert "[… 1 of 3 examples omitted to fit the context budget …]" in contents[4]
    assert out.trimmed == ["examples: dropped 1 of 3 (the last ones) to fit the budget"]
    assert out.messages[-1].content == "Code:\nx = 1"  # the inputs were not touched


def test_inputs_trimmed_in_the_middle_by_priority_instruction_untouched(review: Template) -> None:
    full = review.render(language="python", code=LONG_CODE)
    budget = count_tokens(full.messages) // 3
    out = review.render(language="python", code=LONG_CODE, budget=budget)
    assert out.token_count is not None and out.token_count <= budget
    assert out.token_count == count_tokens(out.messages)
    assert out.examples_used == 0  # examples (priority 5) go before code (priority 20)
    system = out.messages[0].content
    assert system == full.messages[0].content  # the instruction is never trimmed
    user = out.messages[-1].content
    match = MARKER.search(user)
    assert match, user
    assert int(match.group(1)) > 0
    # the middle was cut: the head and the tail of the value survive
    assert "line_0000" in user and "line_0599" in user
    assert "line_0300" not in user
    assert out.trimmed[0].startswith("examples: dropped 3 of 3")
    assert out.trimmed[1].startswith("input 'code': cut ") and "middle" in out.trimmed[1]
    # the examples marker is visible too, before the question since no example is left
    assert "[… 3 of 3 examples omitted" in user


def test_cut_is_as_small_as_possible(review: Template) -> None:
    """Binary search keeps the most text that fits: one more token of budget is never wasted by much."""
    full = review.render(language="python", code=LONG_CODE)
    budget = count_tokens(full.messages) // 2
    out = review.render(language="python", code=LONG_CODE, budget=budget)
    assert out.token_count is not None
    assert budget - 10 <= out.token_count <= budget


def test_lower_priority_input_is_cut_before_higher(review: Template) -> None:
    notes = " ".join(f"note{i}" for i in range(800))
    full = review.render(language="python", code=LONG_CODE, notes=notes)
    no_notes = review.render(language="python", code=LONG_CODE, examples="first_k:0")
    budget = count_tokens(no_notes.messages) + 60
    assert budget < count_tokens(full.messages)
    out = review.render(language="python", code=LONG_CODE, notes=notes, budget=budget)
    user = out.messages[-1].content
    assert LONG_CODE in user  # code (priority 20) survived whole
    assert "note0 " in user and "note799" not in user  # notes (priority 10, trim: tail) lost its end
    assert [t.split(":")[0] for t in out.trimmed] == ["examples", "input 'notes'"]
    assert "from the end" in out.trimmed[1]


def test_impossible_budget_raises_with_the_overshoot(review: Template) -> None:
    with pytest.raises(ContextBudgetError) as info:
        review.render(language="python", code=LONG_CODE, budget=20)
    message = str(info.value)
    assert "'review'" in message and "budget of 20" in message
    needed = int(re.search(r"needs (\d+) tokens, (\d+) over", message).group(1))  # type: ignore[union-attr]
    over = int(re.search(r"needs (\d+) tokens, (\d+) over", message).group(2))  # type: ignore[union-attr]
    assert needed - 20 == over > 0


def test_untrimmable_template_says_so(make_template) -> None:
    t = make_template(
        """
        name: fixed
        version: 1.0.0
        inputs:
          text: {type: string}
        messages:
          - role: user
            content: "{{ text }}"
        """
    )
    with pytest.raises(ContextBudgetError, match="nothing in it may be trimmed"):
        t.render(text="word " * 200, budget=10)


def test_caller_inputs_are_not_mutated(review: Template) -> None:
    inputs = {"language": "python", "code": LONG_CODE}
    review.render(inputs, budget=300)
    assert inputs["code"] == LONG_CODE


def test_inline_examples_marker_goes_into_the_message_that_shows_them(make_template) -> None:
    t = make_template(
        """
        name: inline
        version: 1.0.0
        inputs:
          q: {type: string}
        examples:
          - {inputs: {q: "alpha alpha alpha alpha alpha alpha"}, output: "one"}
          - {inputs: {q: "beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta beta"}, output: "two"}
        messages:
          - role: system
            content: |
              Examples:{% for e in examples %}
              {{ e.inputs.q }} => {{ e.output }}{% endfor %}
          - role: user
            content: "{{ q }}"
        """
    )
    one = t.render(q="z", examples="first_k:1")
    out = t.render(q="z", budget=count_tokens(one.messages) + 20)
    assert out.examples_used == 1
    assert "alpha" in out.messages[0].content and "beta" not in out.messages[0].content
    assert out.messages[0].content.endswith("[… 1 of 2 examples omitted to fit the context budget …]")


@pytest.mark.parametrize("limit", [-1, 0, 1, 5, 6, 16, 17])
def test_largest_fitting_is_the_one_search_for_both_fits(limit: int) -> None:
    from promptkit.prompts._token_budget import largest_fitting

    asked: list[int] = []

    def fits(n: int) -> bool:
        asked.append(n)
        return n <= limit

    # Brute force over [3, 16]: the largest n that fits, else the low end.
    expected = max([n for n in range(3, 17) if n <= limit], default=3)
    assert largest_fitting(3, 16, fits) == expected
    assert 3 not in asked and len(asked) <= 4  # a binary search, never asking the low end


def test_fit_budget_strategy_keeps_the_longest_prefix_that_fits(review: Template) -> None:
    one = review.render(language="python", code="x = 1", examples="first_k:1")
    budget = count_tokens(one.messages) + 5
    out = review.render(language="python", code="x = 1", examples="fit_budget", budget=budget)
    assert out.examples_used == 1 and out.trimmed == []
    assert out.messages == one.messages
