"""The learned second stage: fitting the pair scorer, its use by SemanticCache (the same code as the protocol
simulation), and its round trip through ``[cache.semantic]`` via ``--write-config``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import (
    PairScorer,
    SemanticCache,
    fit_pair_scorer,
    fit_protocol_scorer,
    protocol_outcome,
    semantic_settings,
    write_semantic_config,
)
from promptkit.cache._calibrate import CalibrationResult
from promptkit.cache._score import FEATURES, _lcs_length, _positions, choose, pair_features
from promptkit.cli import main
from promptkit.config import load_config
from promptkit.errors import CacheError, ConfigError
from tests.cache._semantic_support import HashEmbedder, minilm

MOCK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gptcache" / "mock_data.json"
NEEDS_MOCK = pytest.mark.skipif(
    not MOCK.is_file(), reason=f"{MOCK} is missing (shared/data is not beside the repository)"
)


# Each group: a question, two candidates. The right one shares the question's rare words ("alpha<i>") but
# has the *lower* cosine; the decoy has the higher cosine and shares nothing. Cosine alone is always wrong.
def _groups(n: int, seed: int = 0) -> list[tuple[str, list[str], list[float], int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        right_cos = float(rng.uniform(0.80, 0.88))
        decoy_cos = right_cos + float(rng.uniform(0.01, 0.05))
        question = f"how to configure alpha{i} beta{i} gamma"
        out.append(
            (
                question,
                [f"unrelated wording {i}", f"configure alpha{i} beta{i} settings"],
                [decoy_cos, right_cos],
                1,
            )
        )
    return out


def test_features_have_one_column_per_name_and_mean_what_they_say() -> None:
    rows = pair_features("how do I sort a list", ["sort a list", "bake bread today"], [0.9, 0.2])
    assert rows.shape == (2, len(FEATURES))
    col = {name: i for i, name in enumerate(FEATURES)}
    assert rows[0, col["cosine"]] == 0.9 and rows[0, col["cosine_lead"]] == pytest.approx(0.7)
    assert rows[1, col["cosine_lead"]] == pytest.approx(-0.7)
    assert rows[0, col["covers_question"]] == 1.0 and rows[1, col["jaccard"]] == 0.0
    assert rows[0, col["trigram"]] > rows[1, col["trigram"]]


def _lcs_reference(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(previous[j] + 1 if x == y else max(previous[j + 1], row[j]))
        previous = row
    return previous[-1]


def test_bit_parallel_lcs_matches_the_textbook_table() -> None:
    rng = np.random.default_rng(0)
    vocabulary = ["a", "b", "c", "d", "e"]
    for _ in range(2000):
        a = [vocabulary[i] for i in rng.integers(0, 5, size=int(rng.integers(0, 30)))]
        b = [vocabulary[i] for i in rng.integers(0, 5, size=int(rng.integers(0, 70)))]
        assert _lcs_length(a, _positions(b), len(b)) == _lcs_reference(a, b), (a, b)


def test_order_features_tell_apart_candidates_with_the_same_words() -> None:
    question = "the cache stores answers before the model runs"
    same_order = "the cache stores answers before the model runs again"
    shuffled = "runs the model again before answers the cache stores"
    rows = pair_features(question, [same_order, shuffled], [0.9, 0.9])
    col = {name: i for i, name in enumerate(FEATURES)}
    assert rows[0, col["jaccard"]] == rows[1, col["jaccard"]]  # the bag of words cannot tell them apart
    assert rows[0, col["lcs_words_question"]] == 1.0 and rows[0, col["lcs_words_cached"]] == pytest.approx(
        8 / 9
    )
    assert rows[1, col["lcs_words_question"]] < 0.6
    assert rows[0, col["lcs_words_lead"]] > 0 > rows[1, col["lcs_words_lead"]]
    assert rows[0, col["lcs_stems_lead"]] > 0 > rows[1, col["lcs_stems_lead"]]


def test_a_pair_v1_scorer_still_scores_with_its_thirteen_features() -> None:
    weights = tuple(float(i + 1) for i in range(13))
    old = PairScorer(version="pair-v1", weights=weights)
    rows = pair_features("how do I sort a list", ["sort a list", "sort the list in place"], [0.9, 0.8])
    assert rows @ old.vector() == pytest.approx(rows[:, :13] @ np.asarray(weights))
    assert PairScorer(weights=(0.0,) * len(FEATURES)).version == "pair-v2"


def test_fitting_learns_what_cosine_gets_wrong() -> None:
    scorer = fit_pair_scorer(_groups(40))
    test = _groups(20, seed=1)
    for question, texts, cosines, right in test:
        blend = choose(question, texts, cosines, [0, 1], lexical_weight=0.0)
        learned = choose(question, texts, cosines, [0, 1], lexical_weight=0.0, scorer=scorer)
        assert blend is not None and blend.best == 0  # the decoy, by cosine
        assert learned is not None and learned.best == right and learned.confidence is not None
        assert learned.confidence > 0.9 and learned.lead == learned.confidence
        # The threshold still judges the embedding-side similarity of the chosen candidate.
        assert learned.similarity == pytest.approx(cosines[right])


def test_duplicate_answers_share_the_confidence() -> None:
    scorer = fit_pair_scorer(_groups(40))
    question, texts, cosines, _ = _groups(1, seed=2)[0]
    texts, cosines = [*texts, texts[1]], [*cosines, cosines[1]]
    split = choose(question, texts, cosines, ["a", "b", "c"], lexical_weight=0.0, scorer=scorer)
    same = choose(question, texts, cosines, ["a", "b", "b"], lexical_weight=0.0, scorer=scorer)
    assert split is not None and same is not None
    assert split.confidence is not None and split.confidence < 0.6  # two equal candidates, two answers
    assert same.confidence is not None and same.confidence > 0.9


def test_fit_refuses_too_little_data_and_scorer_checks_its_weights() -> None:
    with pytest.raises(CacheError, match="at least 10 queries"):
        fit_pair_scorer(_groups(5))
    with pytest.raises(ValueError, match=f"expected {len(FEATURES)} weights for pair-v2"):
        PairScorer(weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="expected 13 weights for pair-v1"):
        PairScorer(version="pair-v1", weights=(1.0,) * len(FEATURES))


def _store(cache: SemanticCache, texts: list[str], vectors: np.ndarray) -> None:
    cache.store_many([(t, GenerateResponse(text=str(i))) for i, t in enumerate(texts)], vectors=vectors)


def test_semantic_cache_ranks_with_the_learned_scorer(tmp_path: Path) -> None:
    scorer = fit_pair_scorer(_groups(40))
    question, texts, cosines, right = _groups(1, seed=3)[0]
    # Unit vectors whose cosines with the query vector are exactly the group's cosines.
    query = np.zeros(8, dtype=np.float32)
    query[0] = 1.0
    vectors = np.zeros((2, 8), dtype=np.float32)
    for j, c in enumerate(cosines):
        vectors[j, 0], vectors[j, j + 1] = c, np.sqrt(1 - c * c)
    common = {"embedder": HashEmbedder(), "threshold": 0.7, "lexical_weight": 0.0, "index": "brute"}
    with SemanticCache(tmp_path / "blend.sqlite", margin=0.0, **common) as blend:
        _store(blend, texts, vectors)
        assert blend.lookup(question, vector=query).response.text == "0"  # type: ignore[union-attr]
    with SemanticCache(tmp_path / "learned.sqlite", scorer=scorer, confidence=0.9, **common) as learned:
        _store(learned, texts, vectors)
        decision = learned.decide(question, vector=query)
        assert decision.reason == "hit" and decision.hit is not None
        assert decision.hit.response.text == str(right) and decision.confidence is not None
        assert decision.hit.similarity == pytest.approx(cosines[right], abs=1e-6)
        # The same query is ambiguous when the scorer's confidence must be higher than it is.
        strict = SemanticCache(tmp_path / "learned.sqlite", scorer=scorer, confidence=1.0, **common)
        try:
            assert strict.decide(question, vector=query).reason == "ambiguous"
        finally:
            strict.close()


def test_learned_weights_round_trip_through_the_config(tmp_path: Path) -> None:
    scorer = fit_pair_scorer(_groups(40))
    config = tmp_path / "promptkit.toml"
    config.write_text('[cache.semantic]\ntemplates = ["explain"]\nmargin = 0.03\n')
    result = CalibrationResult(threshold=0.74, confidence=0.76, scorer=scorer, target_false_hit=0.01)
    write_semantic_config(config, result.config_values())
    settings = semantic_settings(load_config(path=config))
    assert settings.scorer is not None and settings.templates == ("explain",)
    assert settings.scorer.weights == pytest.approx(scorer.weights, rel=1e-5, abs=1e-6)
    assert (settings.threshold, settings.confidence, settings.min_lead) == (0.74, 0.76, 0.76)
    # A later calibration without the scorer removes it, so the margin applies again.
    blend = CalibrationResult(threshold=0.8, margin=0.02, target_false_hit=0.01)
    write_semantic_config(config, blend.config_values())
    settings = semantic_settings(load_config(path=config))
    assert settings.scorer is None and (settings.threshold, settings.margin, settings.min_lead) == (
        0.8,
        0.02,
        0.02,
    )
    assert "scorer" not in config.read_text()


def test_a_bad_scorer_in_the_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "promptkit.toml"
    config.write_text('[cache.semantic]\nscorer = { version = "pair-v1", weights = [1.0, 2.0] }\n')
    with pytest.raises(ConfigError, match=r"\[cache.semantic\] scorer.weights"):
        semantic_settings(load_config(path=config))


@NEEDS_MOCK
def test_cli_write_config_with_the_scorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    subset = tmp_path / "mock_data.json"
    subset.write_text(json.dumps(json.loads(MOCK.read_text())[:80]))
    (tmp_path / "promptkit.toml").write_text('[state]\ndir = "state"\n\n[cache.semantic]\nmargin = 0.03\n')
    code = main(
        ["cache", "calibrate", str(subset), "--embedder", str(minilm().model_path), "--scorer",
         "--write-config", "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "gptcache-protocol" and result["false_hit_rate"] <= 0.01
    assert result["scorer"] is not None and result["margin"] is None and result["confidence"] is not None
    settings = semantic_settings(load_config(path=tmp_path / "promptkit.toml"))
    assert settings.scorer is not None
    assert settings.scorer.weights == pytest.approx(result["scorer"]["weights"], rel=1e-5, abs=1e-6)
    assert settings.confidence == pytest.approx(result["confidence"])


def _protocol(n: int, seed: int) -> tuple[list[str], list[str], list[int], np.ndarray, np.ndarray]:
    """GPTCache-protocol data where each query's right origin (its own) has the lower cosine of its two
    candidates, and only the shared rare words say which is right."""
    origins = [f"configure alpha{i} beta{i} settings" for i in range(n)]
    queries = [f"how to configure alpha{i} beta{i} gamma" for i in range(n)]
    rng = np.random.default_rng(seed)
    top = np.array([[i, (i + 1) % n] for i in range(n)])
    cos = np.array([[0.8, 0.85 + rng.uniform(0, 0.02)] for _ in range(n)])  # the wrong one always higher
    return origins, queries, list(range(n)), top, cos


def test_protocol_scorer_is_fitted_on_the_given_rows_only() -> None:
    origins, queries, expected, top, cos = _protocol(30, seed=0)
    scorer = fit_protocol_scorer(origins, queries, expected, top, cos, rows=np.arange(20))
    outcome = protocol_outcome(origins, queries, expected, top, cos, scorer=scorer, lexical_weight=0.0)
    assert outcome.correct[20:].all()  # unseen queries ranked right
    assert not protocol_outcome(origins, queries, expected, top, cos, lexical_weight=0.0).correct.any()
    with pytest.raises(CacheError, match="at least 10"):
        fit_protocol_scorer(origins, queries, expected, top, cos, rows=np.arange(5))


def test_hashed_profiles_give_the_exact_ngram_and_word_features() -> None:
    from promptkit.cache._match import char_ngrams, ngram_cosine

    question = "How do I enable streaming responses in the client?"
    texts = ["Enabling streamed responses in the client", "client responses", "bake bread"]
    rows = pair_features(question, texts, [0.9, 0.8, 0.1])
    col = {name: i for i, name in enumerate(FEATURES)}
    for j, text in enumerate(texts):
        for name, n in (("trigram", 3), ("char4", 4), ("char5", 5)):
            exact = ngram_cosine(char_ngrams(question, n), char_ngrams(text, n))  # the dict implementation
            assert rows[j, col[name]] == pytest.approx(exact, abs=1e-12)
    # "client responses": both content words are the question's; the question has more.
    assert rows[1, col["covers_cached"]] == 1.0 and 0 < rows[1, col["covers_question"]] < 1
    assert rows[2, col["rare_overlap"]] == 0.0 and rows[1, col["rare_overlap"]] > 0
    assert pair_features(question, [], []).shape == (0, len(FEATURES))


def test_cross_fitted_outcome_scores_only_the_given_rows_with_unseen_scorers() -> None:
    from promptkit.cache import cross_fitted_outcome

    origins, queries, expected, top, cos = _protocol(60, seed=1)
    rows = np.arange(50)
    honest = cross_fitted_outcome(origins, queries, expected, top, cos, rows, lexical_weight=0.0)
    assert honest.correct[rows].all() and not honest.correct[50:].any()
    assert np.isneginf(honest.similarity[50:]).all() and not honest.hits(-1.0, 0.0)[50:].any()
    # The deployed scorer is the one fitted on all the calibration rows.
    assert honest.scorer == fit_protocol_scorer(origins, queries, expected, top, cos, rows)
    with pytest.raises(CacheError, match="at least 2 folds"):
        cross_fitted_outcome(origins, queries, expected, top, cos, rows, folds=1)
