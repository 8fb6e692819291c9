from __future__ import annotations

import pytest

from promptkit.errors import RenderError
from promptkit.prompts import ExampleSelection, LexicalEmbedder, Template
from promptkit.prompts._examples import lexical_tokens

from .conftest import GOOD

MANY = """
name: many
version: 1.0.0
inputs:
  q: {type: string}
examples:
%s
messages:
  - examples:
      - role: user
        content: "{{ example.inputs.q }}"
      - role: assistant
        content: "{{ example.output }}"
  - role: user
    content: "{{ q }}"
"""


@pytest.fixture
def many(make_template) -> Template:
    items = "\n".join(f'  - {{inputs: {{q: "question {i}"}}, output: "answer {i}"}}' for i in range(10))
    return make_template(MANY % items)


def shown(rendered) -> list[str]:
    return [m.content for m in rendered.messages if m.role == "assistant"]


def test_all_is_the_default_and_keeps_order(many: Template) -> None:
    assert shown(many.render(q="x")) == [f"answer {i}" for i in range(10)]


def test_first_k(many: Template) -> None:
    out = many.render(q="x", examples=ExampleSelection(strategy="first_k", k=3))
    assert shown(out) == ["answer 0", "answer 1", "answer 2"]
    assert out.examples_used == 3
    assert shown(many.render(q="x", examples="first_k:2")) == ["answer 0", "answer 1"]


def test_random_k_is_seeded_deterministic_and_in_original_order(many: Template) -> None:
    picks = {
        seed: shown(many.render(q="x", examples=ExampleSelection(strategy="random_k", k=4, seed=seed)))
        for seed in range(6)
    }
    for seed, chosen in picks.items():
        again = shown(many.render(q="x", examples=ExampleSelection(strategy="random_k", k=4, seed=seed)))
        assert again == chosen
        assert len(chosen) == 4 and len(set(chosen)) == 4
        indexes = [int(c.split()[-1]) for c in chosen]
        assert indexes == sorted(indexes)
    assert len({tuple(v) for v in picks.values()}) > 1  # different seeds give different draws


def test_random_k_larger_than_pool_takes_all(many: Template) -> None:
    assert len(shown(many.render(q="x", examples="random_k:50"))) == 10


def test_similar_k_picks_the_lexically_closest() -> None:
    t = Template.from_file(GOOD / "classify.yaml")
    cases = {
        "I was charged twice on my invoice this month": "billing",
        "the app crashes every time I upload a picture": "bug",
        "cannot reset my password, the account is locked": "account",
        "would love a dark mode option on the dashboard": "feature",
    }
    for ticket, category in cases.items():
        out = t.render(ticket=ticket)  # the template's default: similar_k with k=1
        assert out.examples_used == 1
        assert f'"category": "{category}"' in out.messages[2].content, ticket


def test_similar_k_orders_by_similarity_and_breaks_ties_by_original_order(many: Template) -> None:
    out = many.render(q="question 7", examples="similar_k:3")
    assert shown(out)[0] == "answer 7"
    # every other example shares only "question": a tie, kept in original order
    assert shown(out)[1:] == ["answer 0", "answer 1"]


def test_similar_k_uses_a_given_embedder() -> None:
    t = Template.from_file(GOOD / "classify.yaml")
    calls: list[list[str]] = []

    class LengthEmbedder:
        """Similarity by text length only: proves the caller's embedder decides."""

        def embed(self, texts: list[str]) -> list[list[float]]:
            calls.append(texts)
            return [[1.0, len(t) / 100.0] for t in texts]

    embedder = LengthEmbedder()
    longest = max(t.examples, key=lambda e: len(e.inputs["ticket"]))
    out = t.render(ticket="x" * len(longest.inputs["ticket"]), embedder=embedder)
    assert longest.inputs["ticket"] in out.messages[1].content
    t.render(ticket="y" * 10, embedder=embedder)
    # example vectors are cached per embedder: later renders embed only the query
    assert [len(c) for c in calls] == [4, 1, 1]


def test_fit_budget_with_its_own_budget_keeps_a_prefix(many: Template) -> None:
    from promptkit.prompts._tokens import count_tokens_detailed

    def cost(i: int) -> int:
        return count_tokens_detailed(
            [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
        )[0]

    budget = cost(0) + cost(1) + cost(2) + 1
    out = many.render(q="x", examples=ExampleSelection(strategy="fit_budget", budget=budget))
    assert shown(out) == ["answer 0", "answer 1", "answer 2"]


def test_fit_budget_against_the_render_budget(many: Template) -> None:
    from promptkit.prompts import count_tokens

    full = many.render(q="x")
    three = many.render(q="x", examples="first_k:3")
    budget = count_tokens(three.messages)
    out = many.render(q="x", examples="fit_budget", budget=budget)
    assert shown(out) == ["answer 0", "answer 1", "answer 2"]
    assert out.trimmed == []  # a selection, not a trim: no markers
    assert out.token_count is not None and out.token_count <= budget < count_tokens(full.messages)


def test_fit_budget_without_any_budget_takes_all(many: Template) -> None:
    assert len(shown(many.render(q="x", examples="fit_budget"))) == 10


@pytest.mark.parametrize("bad", ["nearest", "first_k:two", "first_k:-1"])
def test_bad_strategy_strings_fail_clearly(many: Template, bad: str) -> None:
    with pytest.raises(RenderError):
        many.render(q="x", examples=bad)


def test_examples_in_jinja_have_inputs_output_and_output_json() -> None:
    t = Template.from_file(GOOD / "summarize.yaml")
    out = t.render(text="Long text here.")
    system = out.messages[0].content
    assert "Text: The cat sat on the mat all day long.\nSummary: A cat rested on a mat." in system
    assert t.examples[0].output_json == "A cat rested on a mat."  # free text: the text itself


def test_lexical_embedder_vectors() -> None:
    emb = LexicalEmbedder(dimensions=256)
    a, b, c = emb.embed(["reset my password", "password reset please", "dark mode dashboard"])
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert abs(dot(a, a) - 1.0) < 1e-9
    assert dot(a, b) > dot(a, c)
    assert emb.embed([""]) == [[0.0] * 256]


def test_lexical_tokens_split_identifiers() -> None:
    assert lexical_tokens("parseHTTPRequest snake_case x1") == [
        "parsehttprequest",
        "parse",
        "httprequest",
        "snake_case",
        "snake",
        "case",
        "x1",
    ]
