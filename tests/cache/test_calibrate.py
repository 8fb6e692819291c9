"""Calibration: reading pairs, the threshold curve, and picking the lowest threshold that meets the target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from promptkit.cache import calibrate_pairs, calibrate_protocol, load_pairs
from promptkit.cache._calibrate import ProtocolOutcome, threshold_curve
from promptkit.errors import CacheError
from tests.cache._semantic_support import HashEmbedder


def test_curve_counts_by_hand() -> None:
    scores = [0.95, 0.9, 0.8, 0.7, 0.85, 0.6, -math.inf]
    labels = [True, True, True, True, False, False, True]
    (p,) = threshold_curve(scores, labels, [0.8])
    assert (p.true_hits, p.false_hits, p.hits) == (3, 1, 4)
    assert p.precision == pytest.approx(0.75)
    assert p.recall == pytest.approx(3 / 5)
    assert p.false_hit_rate == pytest.approx(0.5)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_calibrate_pairs_picks_the_lowest_threshold_meeting_the_target(tmp_path: Path) -> None:
    # Hashed bag of words: cosine = shared words / 4 for these four-word texts.
    rows = [
        {"a": "w1 w2 w3 w4", "b": "w1 w2 w3 w4", "label": 1},  # 1.0
        {"a": "x1 x2 x3 x4", "b": "x1 x2 x3 y4", "label": "paraphrase"},  # 0.75
        {"a": "z1 z2 z3 z4", "b": "z1 z2 q3 q4", "label": False},  # 0.5
        {"a": "k1 k2 k3 k4", "b": "m1 m2 m3 m4", "label": "different"},  # ~0
    ]
    pairs = load_pairs(_write_jsonl(tmp_path / "p.jsonl", rows))
    result = calibrate_pairs(pairs, HashEmbedder(), target_false_hit=0.0, lexical_weight=0.0, held_out=0)
    assert result.threshold is not None and 0.5 < result.threshold <= 0.75
    assert result.recall == 1.0 and result.precision == 1.0 and result.false_hit_rate == 0.0
    # Allowing one false hit in two negatives lets the threshold drop to the negative at 0.5.
    looser = calibrate_pairs(pairs, HashEmbedder(), target_false_hit=0.5, lexical_weight=0.0, held_out=0)
    assert looser.threshold is not None and looser.threshold <= 0.5 < result.threshold


def test_a_guarded_negative_never_counts_as_a_hit(tmp_path: Path) -> None:
    rows = [
        {"a": "how do I enable logging", "b": "how do I disable logging", "label": 0},
        {"a": "how do I enable logging", "b": "how do I enable logging now", "label": 1},
    ]
    result = calibrate_pairs(
        load_pairs(_write_jsonl(tmp_path / "p.jsonl", rows)), HashEmbedder(), target_false_hit=0.0, held_out=0
    )
    assert result.curve[0].false_hits == 0  # even at the lowest threshold


def test_csv_json_and_gptcache_formats(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("a,b,label\nhello there,hi there,1\nhello,goodbye,0\n")
    assert load_pairs(csv_path).labels == [True, False]
    json_path = tmp_path / "p.json"
    json_path.write_text(json.dumps([{"a": "x", "b": "y", "label": True}]))
    assert load_pairs(json_path).a == ["x"]
    mock = tmp_path / "mock_data.json"
    mock.write_text(json.dumps([{"origin": "o1", "similar": "s1"}, {"origin": "o2", "similar": "s2"}]))
    loaded = load_pairs(mock)
    assert loaded.kind == "gptcache" and loaded.a == ["o1", "o2"] and loaded.b == ["s1", "s2"]


def test_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"a": "x", "b": "y", "label": 1}\n{"a": "x", "label": 1}\n')
    with pytest.raises(CacheError, match=r"p.jsonl:2: b: missing field 'b'"):
        load_pairs(bad)
    bad.write_text('{"a": "x", "b": "y", "label": "maybe"}\n')
    with pytest.raises(CacheError, match=r"p.jsonl:1: label"):
        load_pairs(bad)
    bad_csv = tmp_path / "p.csv"
    bad_csv.write_text("x,y\n1,2\n")
    with pytest.raises(CacheError, match="header a,b,label"):
        load_pairs(bad_csv)
    only_pos = _write_jsonl(tmp_path / "pos.jsonl", [{"a": "x", "b": "y", "label": 1}])
    with pytest.raises(CacheError, match="both paraphrase and different"):
        calibrate_pairs(load_pairs(only_pos), HashEmbedder())


def test_protocol_calibration_trades_margin_and_threshold() -> None:
    # Four queries: two right with a clear lead, one right but ambiguous, one wrong and ambiguous.
    outcome = ProtocolOutcome(
        similarity=np.array([0.95, 0.9, 0.92, 0.93]),
        lead=np.array([0.2, 0.2, 0.01, 0.01]),
        guarded=np.zeros(4, dtype=bool),
        correct=np.array([True, True, True, False]),
    )
    result = calibrate_protocol(outcome, target_false_hit=0.0, margins=[0.0, 0.05], thresholds=[0.8, 0.94])
    assert (result.threshold, result.margin) == (0.8, 0.05)
    assert outcome.table(0.8, 0.05) == {"queries": 4, "correct": 2, "wrong": 0, "miss": 2}


def test_protocol_calibration_with_a_learned_scorer_picks_a_confidence() -> None:
    from promptkit.cache import PairScorer
    from promptkit.cache._score import FEATURES

    # Leads are confidences now: the right answers are confident, the wrong one is not.
    outcome = ProtocolOutcome(
        similarity=np.array([0.95, 0.9, 0.92, 0.93]),
        lead=np.array([0.97, 0.9, 0.6, 0.55]),
        guarded=np.zeros(4, dtype=bool),
        correct=np.array([True, True, True, False]),
        scorer=PairScorer(weights=(0.0,) * len(FEATURES)),
    )
    result = calibrate_protocol(outcome, target_false_hit=0.0, thresholds=[0.8])
    assert result.margin is None and result.scorer is outcome.scorer
    assert result.confidence is not None and 0.55 < result.confidence <= 0.6  # the lowest that refuses 0.55
    assert result.min_lead == result.confidence
    assert outcome.table(0.8, result.confidence) == {"queries": 4, "correct": 3, "wrong": 0, "miss": 1}
    # A match classifier left from a calibration on labelled pairs is removed: the threshold is not its probability.
    assert set(result.config_values()) == {"threshold", "confidence", "scorer", "classifier"}
    assert result.config_values()["classifier"] is None


# Questions that share a long preamble: many character trigrams in common, as real labelled pairs have.
PREAMBLE = (
    "In the deployment configuration of our production service, which runs behind the regional load balancer "
    "and reads its settings from the shared configuration repository at start-up,"
)
TOPICS = [
    ("how do I rotate the access keys", "how can the access keys be rotated"),
    ("how do I raise the request timeout", "how can the request timeout be raised"),
    ("where are the audit logs kept", "where do the audit logs get kept"),
    ("who approves a schema migration", "who has to approve a schema migration"),
    ("what limits the upload size", "what is limiting the upload size"),
    ("why are health checks failing", "why do the health checks fail"),
]


def _long_pairs(tmp_path: Path) -> Path:
    rows = [{"a": f"{PREAMBLE} {x}?", "b": f"{PREAMBLE} {y}?", "label": 1} for x, y in TOPICS]
    for i, (x, _) in enumerate(TOPICS):
        y = TOPICS[(i + 1) % len(TOPICS)][1]
        rows.append({"a": f"{PREAMBLE} {x}?", "b": f"{PREAMBLE} {y}?", "label": 0})
    return _write_jsonl(tmp_path / "long.jsonl", rows)


def test_calibration_scores_pairs_with_long_shared_text_as_the_lookup_does(tmp_path: Path) -> None:
    """Every pair shares ~150 characters: the old calibration added the raw count of shared trigrams (~150)
    to the cosine, so every pair scored far above 1 and no threshold existed."""
    from promptkit.backends import GenerateResponse
    from promptkit.cache import SemanticCache, pair_similarities

    pairs = load_pairs(_long_pairs(tmp_path))
    embedder = HashEmbedder()
    vectors = np.asarray(embedder.embed(pairs.a + pairs.b))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(pairs.a)
    cosines = np.einsum("ij,ij->i", vectors[:n], vectors[n:])
    scores = pair_similarities(pairs.a, pairs.b, cosines, lexical_weight=0.25)
    assert np.all(np.isfinite(scores)) and scores.max() <= 1.0 + 1e-9
    # The lookup gives each pair the same similarity: cache b, ask a.
    for i, (a, b) in enumerate(zip(pairs.a, pairs.b, strict=True)):
        with SemanticCache(
            tmp_path / f"s{i}.sqlite", embedder=embedder, lexical_weight=0.25, threshold=0.0
        ) as cache:
            cache.store(b, GenerateResponse(text="answer"))
            decision = cache.decide(a, count=False)
        assert decision.similarity == pytest.approx(scores[i], abs=1e-6)
    result = calibrate_pairs(pairs, embedder, target_false_hit=0.0, held_out=0)
    assert result.threshold is not None and result.threshold <= 1.0
    assert result.false_hit_rate == 0.0 and result.recall is not None and result.recall > 0
    positives = scores[np.array(pairs.labels)]
    negatives = scores[~np.array(pairs.labels)]
    assert negatives.max() < result.threshold <= positives.max()


def test_gzipped_pairs_and_a_split_that_is_stable(tmp_path: Path) -> None:
    import gzip

    from promptkit.cache import split_pairs

    rows = [
        {"a": f"question {i} about x", "b": f"question {i} about y", "label": i % 3 == 0} for i in range(400)
    ]
    path = tmp_path / "pairs.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    pairs = load_pairs(path)
    assert pairs.kind == "pairs" and len(pairs.a) == 400 and pairs.labels[:3] == [True, False, False]
    fit, held = split_pairs(pairs, 0.3)
    assert len(fit.a) + len(held.a) == 400 and 80 < len(held.a) < 160
    assert not set(zip(fit.a, fit.b, strict=True)) & set(zip(held.a, held.b, strict=True))
    # The part depends on the pair alone: not on the file's order, nor on which text comes first.
    reordered = load_pairs(
        _write_jsonl(tmp_path / "r.jsonl", [{**r, "a": r["b"], "b": r["a"]} for r in rows[::-1]])
    )
    _, held_again = split_pairs(reordered, 0.3)
    assert set(zip(held_again.b, held_again.a, strict=True)) == set(zip(held.a, held.b, strict=True))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(CacheError, match="bad.jsonl.gz.*gzip|gzip.*bad.jsonl.gz"):
        load_pairs(bad)


def _lexical_pairs(n: int, seed: int = 0) -> list[dict]:
    """Pairs whose embedding says little: duplicates reuse the question's rare words, different questions keep
    the frame and swap them. The hash bag-of-words cosine overlaps between the two; word overlap does not."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = f"gadget{i} widget{i} sprocket{i}"
        filler = " ".join(f"w{int(k)}" for k in rng.integers(0, 40, size=int(rng.integers(2, 6))))
        if i % 2:
            rows.append({"a": f"how to tune {topic} {filler}", "b": f"tuning {topic} best way", "label": 1})
        else:
            other = f"gadget{i + 1000} widget{i + 1000} sprocket{i + 1000}"
            rows.append(
                {"a": f"how to tune {topic} {filler}", "b": f"how to tune {other} {filler}", "label": 0}
            )
    return rows


def test_learned_classifier_on_labelled_pairs_is_reported_on_held_out_pairs(tmp_path: Path) -> None:
    from promptkit.backends import GenerateResponse
    from promptkit.cache import PairClassifier, SemanticCache, SemanticSettings

    pairs = load_pairs(_write_jsonl(tmp_path / "p.jsonl", _lexical_pairs(600)))
    progress: list[tuple[str, int, int]] = []
    plain = calibrate_pairs(pairs, HashEmbedder(), target_false_hit=0.01)
    learned = calibrate_pairs(
        pairs, HashEmbedder(), target_false_hit=0.01, learn=True, progress=lambda *a: progress.append(a)
    )
    assert isinstance(learned.classifier, PairClassifier) and learned.method == "pairs+classifier"
    assert learned.held_out is not None and plain.held_out is not None
    assert learned.held_out.pairs + learned.positives + learned.negatives == 600
    # On pairs it never saw, the classifier serves more of the duplicates within the false-hit target.
    assert learned.held_out.hit_rate > plain.held_out.hit_rate + 0.2
    assert learned.held_out.false_hit_rate <= 0.05 and learned.held_out.precision >= 0.95
    assert {stage for stage, _, _ in progress} >= {"embedding", "features", "fitting", "scoring"}
    assert all(done <= total for _, done, total in progress)
    # The written settings make the cache's lookup score a pair exactly as calibration did.
    values = learned.config_values()
    assert values["classifier"]["version"] == "match-v1" and values["threshold"] == learned.threshold
    settings = SemanticSettings.model_validate({k: v for k, v in values.items() if v is not None})
    a, b = pairs.a[1], pairs.b[1]
    with SemanticCache(tmp_path / "s.sqlite", embedder=HashEmbedder(), settings=settings) as cache:
        cache.store(b, GenerateResponse(text="answer"))
        decision = cache.decide(a, count=False)
        vec = np.asarray(HashEmbedder().embed([a, b]))
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        from promptkit.cache import pair_similarities

        expected = pair_similarities([a], [b], [float(vec[0] @ vec[1])], classifier=settings.classifier)[0]
        assert decision.similarity == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= decision.similarity <= 1.0


def test_held_out_parts_without_both_labels_are_one_clear_error(tmp_path: Path) -> None:
    rows = [{"a": "x1", "b": "y1", "label": 1}, {"a": "x2", "b": "y2", "label": 0}]
    pairs = load_pairs(_write_jsonl(tmp_path / "tiny.jsonl", rows))
    with pytest.raises(CacheError, match=r"tiny.jsonl.*held out 0"):
        calibrate_pairs(pairs, HashEmbedder(), held_out=0.5)
