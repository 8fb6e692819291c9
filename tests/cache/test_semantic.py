"""The semantic cache: scope rules, thresholds, persistence beside the exact cache, stats, and generate()."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateResponse
from promptkit.cache import SemanticCache, SemanticSettings, semantic_settings
from promptkit.config import load_config
from promptkit.errors import CacheError, ConfigError
from promptkit.generation import generate, reset_defaults
from promptkit.ledger import Ledger
from promptkit.prompts import Template
from tests.cache._semantic_support import HashEmbedder, minilm


@pytest.fixture
def hashed(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SemanticCache(tmp_path / "semantic.sqlite", embedder=HashEmbedder(), threshold=0.9, margin=0.0) as c:
        yield c


def _r(text: str, cost: float | None = None) -> GenerateResponse:
    return GenerateResponse(text=text, cost_usd=cost)


def test_a_hit_needs_the_same_template_model_and_must_match_inputs(hashed: SemanticCache) -> None:
    scope = {"template_hash": "t1", "model_class": "m1", "must_match": {"lang": "python"}}
    hashed.store("how to read a file", _r("open()"), **scope)
    assert hashed.lookup("how to read a file", **scope).response.text == "open()"  # type: ignore[union-attr]
    assert hashed.lookup("how to read a file", **{**scope, "template_hash": "t2"}) is None
    assert hashed.lookup("how to read a file", **{**scope, "model_class": "m2"}) is None
    assert hashed.lookup("how to read a file", **{**scope, "must_match": {"lang": "rust"}}) is None
    assert hashed.lookup("how to read a file", **scope, namespace="other") is None


def test_threshold_and_served_answer_are_marked_cached(hashed: SemanticCache) -> None:
    hashed.store("alpha beta gamma delta", _r("A", cost=0.5))
    hit = hashed.lookup("alpha beta gamma delta")
    assert hit is not None and hit.response.cached and hit.similarity == pytest.approx(1.0, abs=1e-5)
    # Shares half the words: cosine 0.5 with the hashed bag of words, below 0.9.
    decision = hashed.decide("alpha beta epsilon zeta")
    assert decision.hit is None and decision.reason == "below_threshold"
    assert decision.similarity is not None and decision.similarity < 0.9


def test_an_ambiguous_query_between_two_different_answers_misses(tmp_path: Path) -> None:
    with SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder(), threshold=0.3, margin=0.05) as c:
        c.store("red green", _r("first"))
        c.store("red blue", _r("second"))
        assert c.decide("red").reason == "ambiguous"
        c.store("red green again", _r("first"))
        assert c.lookup("red green").response.text == "first"  # type: ignore[union-attr]


def test_stats_count_hits_reasons_and_savings(hashed: SemanticCache) -> None:
    hashed.store("one two three", _r("x", cost=0.25))
    hashed.lookup("one two three")
    hashed.lookup("one two three")
    hashed.lookup("four five six")
    hashed.record_rejected()
    stats = hashed.stats()
    assert (stats.entries, stats.lookups, stats.hits, stats.misses) == (1, 3, 2, 1)
    assert stats.below_threshold == 1 and stats.rejected == 1
    assert stats.saved_usd == pytest.approx(0.5)
    assert stats.mean_hit_similarity == pytest.approx(1.0, abs=1e-5)


def test_ttl_expiry_and_clear(tmp_path: Path) -> None:
    now = [1000.0]
    with SemanticCache(
        tmp_path / "s.sqlite", embedder=HashEmbedder(), threshold=0.9, clock=lambda: now[0]
    ) as c:
        c.store("short lived", _r("x"), ttl_s=10)
        assert c.lookup("short lived") is not None
        now[0] += 11
        assert c.lookup("short lived") is None
        assert c.purge_expired() == 1
        c.store("kept", _r("y"))
        assert c.clear() == 1 and c.lookup("kept") is None


def test_index_is_saved_reloaded_caught_up_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "semantic.sqlite"
    embedder = HashEmbedder()
    with SemanticCache(path, embedder=embedder, threshold=0.9) as first:
        first.store("saved question", _r("a"))
        assert first.lookup("saved question") is not None
    files = list((tmp_path / "semantic_index").glob("*.npz"))
    assert len(files) == 1
    # Another process adds a row after the file was written: the reopened index catches up from SQLite.
    with SemanticCache(path, embedder=embedder, threshold=0.9) as writer:
        writer.store("added later", _r("b"))
        writer._scopes.clear()  # this writer keeps no index; only the file on disk is old now
        with SemanticCache(path, embedder=embedder, threshold=0.9) as reader:
            assert reader.lookup("added later").response.text == "b"  # type: ignore[union-attr]
            assert reader.lookup("saved question").response.text == "a"  # type: ignore[union-attr]
    for f in files:
        f.unlink()
    with SemanticCache(path, embedder=embedder, threshold=0.9) as rebuilt:
        assert rebuilt.lookup("saved question").response.text == "a"  # type: ignore[union-attr]
    (tmp_path / "semantic_index" / files[0].name).write_bytes(b"garbage")
    with SemanticCache(path, embedder=embedder, threshold=0.9) as again:
        assert again.lookup("added later").response.text == "b"  # type: ignore[union-attr]


def test_a_delete_in_another_instance_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with (
        SemanticCache(path, embedder=HashEmbedder(), threshold=0.9) as a,
        SemanticCache(path, embedder=HashEmbedder(), threshold=0.9) as b,
    ):
        entry = a.store("to be deleted", _r("x"))
        assert b.lookup("to be deleted") is not None
        assert a.delete(entry)
        assert b.lookup("to be deleted") is None


def test_threads_store_and_look_up_safely(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder(), threshold=0.99, margin=0.0) as c:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    c.store(f"thread {n} item {i}", _r(f"{n}-{i}"))
                    hit = c.lookup(f"thread {n} item {i}")
                    assert hit is not None and hit.response.text == f"{n}-{i}"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(c) == 80


def test_bad_settings_and_inputs_are_cache_errors(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="threshold"):
        SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder(), threshold=3)
    with pytest.raises(CacheError, match="guards"):
        SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder(), guards=("telepathy",))
    with SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder()) as c:
        with pytest.raises(CacheError, match="non-empty"):
            c.store("  ", _r("x"))
        with pytest.raises(CacheError, match="JSON values"):
            c.lookup("q", must_match={"x": object()})


def test_config_table_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "promptkit.toml").write_text('[cache.semantic]\ntemplates = ["explain"]\nthreshold = 0.91\n')
    settings = semantic_settings(load_config(path=tmp_path / "promptkit.toml"))
    assert settings.threshold == 0.91 and settings.enabled_for("explain", None)
    assert not settings.enabled_for("other", "default")
    (tmp_path / "promptkit.toml").write_text("[cache.semantic]\nthreshold = 2\n")
    with pytest.raises(ConfigError, match=r"\[cache.semantic\] threshold"):
        semantic_settings(load_config(path=tmp_path / "promptkit.toml"))
    assert SemanticSettings().templates == ()  # opt-in: nowhere by default


# -- generate() with the real MiniLM embedder -------------------------------------------------------------

TEMPLATE = Template.from_dict(
    {
        "name": "explain",
        "version": "1.0.0",
        "description": "Explain a thing.",
        "inputs": {"question": {"type": "string"}, "lang": {"type": "string"}},
        "must_match": ["lang"],
        "messages": [{"role": "user", "content": "{{ question }}"}],
    }
)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    reset_defaults()
    yield tmp_path
    reset_defaults()


def _backend(calls: list[str]) -> FunctionBackend:
    def answer(request):  # type: ignore[no-untyped-def]
        calls.append(request.messages[-1].content)
        return GenerateResponse(text=f"answer #{len(calls)}", cost_usd=0.01)

    return FunctionBackend(answer)


def test_generate_serves_a_paraphrase_from_the_semantic_cache_and_the_ledger_says_so(state: Path) -> None:
    calls: list[str] = []
    backend = _backend(calls)
    ledger = Ledger(state / "ledger.sqlite")
    with SemanticCache(state / "semantic.sqlite", embedder=minilm(), threshold=0.8) as sem:
        kw = {"model": backend, "cache": False, "ledger": ledger, "semantic_cache": sem}
        first = generate(TEMPLATE, {"question": "How do I reverse a list in Python?", "lang": "py"}, **kw)
        second = generate(TEMPLATE, {"question": "How can I reverse a Python list?", "lang": "py"}, **kw)
        other_lang = generate(TEMPLATE, {"question": "How can I reverse a Python list?", "lang": "js"}, **kw)
        opposite = generate(
            TEMPLATE, {"question": "How do I not reverse a list in Python?", "lang": "py"}, **kw
        )
    assert len(calls) == 3  # the paraphrase was served from the cache, nothing else was
    assert second.cached and second.text == first.text
    assert not other_lang.cached and not opposite.cached
    hits = [e for e in ledger.entries() if e.cache == "semantic"]
    assert len(hits) == 1 and hits[0].outcome == "cache_hit"
    assert hits[0].cache_similarity is not None and 0.8 <= hits[0].cache_similarity <= 1.0
    assert hits[0].saved_usd == pytest.approx(0.01)
    ledger.close()


def test_a_semantic_hit_must_pass_accept_for_the_new_request(state: Path) -> None:
    calls: list[str] = []
    backend = _backend(calls)
    with SemanticCache(state / "semantic.sqlite", embedder=minilm(), threshold=0.8) as sem:
        kw = {"model": backend, "cache": False, "ledger": False, "semantic_cache": sem}
        generate(TEMPLATE, {"question": "How do I reverse a list in Python?", "lang": "py"}, **kw)
        # The cached text is "answer #1"; this call only accepts answers mentioning #2, so it must ask.
        result = generate(
            TEMPLATE,
            {"question": "How can I reverse a Python list?", "lang": "py"},
            accept=lambda out: "#2" in out,
            **kw,
        )
        assert len(calls) == 2 and not result.cached and result.text == "answer #2"
        assert result.attempts[0].cache == "semantic" and result.attempts[0].outcome == "invalid"
        assert sem.stats().rejected == 1


def test_generate_uses_the_exact_cache_only_unless_opted_in(state: Path) -> None:
    calls: list[str] = []
    backend = _backend(calls)
    generate(
        TEMPLATE,
        {"question": "How do I reverse a list in Python?", "lang": "py"},
        model=backend,
        ledger=False,
    )
    result = generate(
        TEMPLATE, {"question": "How can I reverse a Python list?", "lang": "py"}, model=backend, ledger=False
    )
    assert not result.cached and len(calls) == 2
    assert not (state / "home" / "semantic.sqlite").exists()


def test_an_index_file_of_another_database_is_not_used(tmp_path: Path) -> None:
    shared_dir = tmp_path / "idx"
    embedder = HashEmbedder()
    with SemanticCache(tmp_path / "a.sqlite", embedder=embedder, threshold=0.9, index_dir=shared_dir) as a:
        a.store("only in a", _r("a"))
        a.lookup("only in a")
    # Same scope, same ids, other database: the saved file of `a` must not answer for `b`.
    with SemanticCache(tmp_path / "b.sqlite", embedder=embedder, threshold=0.9, index_dir=shared_dir) as b:
        b.store("only in b", _r("b"))
        assert b.lookup("only in b").response.text == "b"  # type: ignore[union-attr]
        (index_state,) = b._scopes.values()
        (entry, score) = index_state.index.search(b.embed(["only in a"])[0], 1)[0]
        # With a's file, entry 1 would carry a's vector and score 1.0 for a's question.
        assert entry == 1 and score < 0.9
