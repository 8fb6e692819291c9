"""The opposite-meaning failure: a negated, reversed or antonym question must never get the cached answer,
while a real paraphrase of the same cached question does (so the cache is not simply refusing everything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import SemanticCache, guard_conflict
from tests.cache._semantic_support import minilm

# (cached question, a paraphrase that should hit, a question with the opposite meaning that must not)
TRIPLES = [
    ("How do I enable dark mode?", "How can I turn on dark mode?", "How do I disable dark mode?"),
    ("Is Python faster than Ruby?", "Is Python quicker than Ruby?", "Is Ruby faster than Python?"),
    ("Is a cat bigger than a mouse?", "Is a cat larger than a mouse?", "Is a mouse bigger than a cat?"),
    ("How do I convert Celsius to Fahrenheit?", "How to convert Celsius into Fahrenheit?",
     "How do I convert Fahrenheit to Celsius?"),
    ("Why does my build pass?", "Why is my build passing?", "Why doesn't my build pass?"),
    ("Should I use tabs for indentation?", "Should tabs be used for indentation?",
     "Should I not use tabs for indentation?"),
    ("How do I increase the heap size in Java?", "How can I increase the Java heap size?",
     "How do I decrease the heap size in Java?"),
    ("How do I add a user to a group in Linux?", "How can I add a user to a Linux group?",
     "How do I remove a user from a group in Linux?"),
    ("How do I upload a file to S3?", "How can I upload a file into S3?", "How do I download a file from S3?"),
    ("How do I encrypt a file with gpg?", "How can I encrypt a file using gpg?", "How do I decrypt a file with gpg?"),
    ("How do I install numpy?", "How can I install numpy?", "How do I uninstall numpy?"),
    ("How do I show hidden files in Finder?", "How can I show hidden files in Finder?",
     "How do I hide hidden files in Finder?"),
    ("What is the maximum length of a URL?", "What's the maximum URL length?", "What is the minimum length of a URL?"),
    ("How do I sort a list in ascending order?", "How can I sort a list in ascending order?",
     "How do I sort a list in descending order?"),
    ("Can I run Docker on Windows 10?", "Is it possible to run Docker on Windows 10?", "Can I run Docker on Windows 11?"),
    ("What changed in Python 3.11?", "What is new in Python 3.11?", "What changed in Python 3.12?"),
    ("Does Alice owe Bob money?", "Does Alice owe money to Bob?", "Does Bob owe Alice money?"),
    ("Did the Romans defeat the Gauls?", "Did the Romans beat the Gauls?", "Did the Gauls defeat the Romans?"),
    ("Is it safe to delete node_modules?", "Is deleting node_modules safe?", "Is it unsafe to delete node_modules?"),
    ("How do I lock my screen on Ubuntu?", "How can I lock the screen on Ubuntu?", "How do I unlock my screen on Ubuntu?"),
    ("Is the first element of a list at index 0?", "Is a list's first element at index 0?",
     "Is the last element of a list at index 0?"),
    ("Should I buy Tesla stock?", "Should I purchase Tesla stock?", "Should I sell Tesla stock?"),
    ("Is 7 a prime number?", "Is seven a prime number?", "Is 9 a prime number?"),
    ("Does the meeting start before noon?", "Does the meeting begin before noon?", "Does the meeting start after noon?"),
]  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # A low threshold on purpose: the guards, not the threshold, must stop the opposite questions.
    path = Path(tmp_path_factory.mktemp("semantic")) / "semantic.sqlite"
    with SemanticCache(path, embedder=minilm(), threshold=0.6) as c:
        for i, (cached, _, _) in enumerate(TRIPLES):
            # One namespace per question: no neighbour can make a lookup ambiguous, so only the guards decide.
            c.store(cached, GenerateResponse(text=f"answer {i}"), namespace=f"q{i}")
        yield c


def test_there_are_at_least_twenty_opposite_meaning_questions() -> None:
    assert len(TRIPLES) >= 20


@pytest.mark.parametrize("i", range(len(TRIPLES)))
def test_opposite_meaning_never_hits(cache: SemanticCache, i: int) -> None:
    _, _, opposite = TRIPLES[i]
    decision = cache.decide(opposite, namespace=f"q{i}")
    assert decision.hit is None, f"{opposite!r} got the answer of {TRIPLES[i][0]!r} ({decision})"


def test_paraphrases_of_the_same_questions_do_hit(cache: SemanticCache) -> None:
    hits = 0
    for i, (_, paraphrase, _) in enumerate(TRIPLES):
        hit = cache.lookup(paraphrase, namespace=f"q{i}")
        if hit is not None:
            assert hit.response.text == f"answer {i}"
            hits += 1
    # Guards cost some paraphrases (e.g. "7" vs "seven"); most must still be served.
    assert hits >= int(0.8 * len(TRIPLES)), hits


def test_guards_are_what_stops_the_embedding_from_hitting(cache: SemanticCache) -> None:
    """Without guards a good share of the opposite questions would be served: the guards earn their keep."""
    unguarded = SemanticCache(
        cache.path, embedder=cache.embedder, threshold=0.6, guards=(), index_dir=cache.index_dir
    )
    try:
        served = sum(
            unguarded.lookup(opp, namespace=f"q{i}") is not None for i, (_, _, opp) in enumerate(TRIPLES)
        )
    finally:
        unguarded.close()
    assert served >= len(TRIPLES) // 2, served


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        ("How do I enable X?", "How do I disable X?", "antonym"),
        ("Is A bigger than B?", "Is B bigger than A?", "reversal"),
        ("Does Alice like Bob?", "Does Bob like Alice?", "reversal"),
        ("Why does it work?", "Why doesn't it work?", "negation"),
        ("Is this not allowed here?", "Is this allowed here?", "negation"),
        ("Python 3.11 release date", "Python 3.12 release date", "number"),
        ("How do I run the tests without coverage?", "How do I run the tests with coverage?", "negation"),
        # The exemptions below (failing verbs, complements, removed, traded operands) must not open these:
        ("Why doesn't my build fail?", "Why does my build fail?", "negation"),
        ("Is the name field not required?", "Is the name field required?", "negation"),
        ("Build the wheel with the tests removed.", "Build the wheel with the tests.", "negation"),
        ("Copy every column except the index.", "Copy every column and the index.", "negation"),
        ("Does pandas use more memory than polars?", "Does pandas use less memory than polars?", "antonym"),
        ("Does pandas use more memory than polars?", "Does polars use more memory than pandas?", "reversal"),
        ("No information about `drop` is given.", "Information about `drop` is given.", "negation"),
    ],
)
def test_each_guard_names_itself(a: str, b: str, guard: str) -> None:
    assert guard_conflict(a, b) == guard
    assert (
        guard_conflict(
            a, b, guards=tuple(g for g in ("negation", "number", "antonym", "reversal") if g != guard)
        )
        is None
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I sort a list in Python?", "In Python, how do I sort a list?"),
        ("No, it doesn't exist in version 2.10.0.", "It does not exist in 2.10.0."),
        ("Use the no-code builder.", "Use the builder that needs no code at all, it is not hard."),
        ("version 3.0 docs", "version 3 docs"),
        ("How do I reset my password?", "How do I reset my password?"),
        # Rephrased negations: both sides say "not", in other words.
        (
            "In the absence of a dataset script, all files are loaded.",
            "If there's no dataset script, all files are loaded.",
        ),
        ("No information about the `drop` function is provided.", "The `drop` function is not described."),
        ("It loads the file to avoid parsing errors.", "It loads the file to prevent parsing errors."),
        # "or not" asks both ways; a shortened code listing quotes fewer of the same numbers.
        ("You can choose whether it is cached or not.", "You can choose whether it is cached."),
        # A negated failing verb, a negated word beside its complement, "with X removed" for "without X",
        # "except"/"omitting" for "not", and a comparative turned round with its operands.
        ("Remember to pass your token to the client.", "Don't forget to give the client your token."),
        (
            "A config file is not mandatory for small projects.",
            "No, a config file is optional for small projects.",
        ),
        ("Is the port not valid?", "Is the port invalid?"),
        ("The copy is made without the index column.", "The copy is made with the index column removed."),
        (
            "It returns a new frame, omitting the given rows.",
            "It returns a new frame without the given rows.",
        ),
        (
            "The proxy does not forward the auth headers, only the body.",
            "The proxy forwards everything except the auth headers.",
        ),
        (
            "How do I handle errors with try/except in Python?",
            "How do I handle errors with try and catch in Python?",
        ),
        (
            "`map()` needs more disk space than `set_transform()`.",
            "`set_transform()` needs less disk space compared to `map()`.",
        ),
        ("for epoch in range(3): step(i == 5)", "for epoch in range(3): step(i == 5); log(i % 10 == 0)"),
    ],
)
def test_guards_leave_paraphrases_alone(a: str, b: str) -> None:
    assert guard_conflict(a, b) is None


def test_antonym_phrases_and_inflections_are_refused_and_same_sides_pass() -> None:
    from promptkit.cache import guard_conflict

    assert guard_conflict("which plan is the cheapest", "which plan is the most expensive") == "antonym"
    assert guard_conflict("how do I enable logging", "how to disabling the logging") == "antonym"
    # Both sides named in each text: no opposition.
    assert guard_conflict("enable or disable logging", "disable or enable the logging") is None
