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
    result = calibrate_pairs(pairs, HashEmbedder(), target_false_hit=0.0, lexical_weight=0.0)
    assert result.threshold is not None and 0.5 < result.threshold <= 0.75
    assert result.recall == 1.0 and result.precision == 1.0 and result.false_hit_rate == 0.0
    # Allowing one false hit in two negatives lets the threshold drop to the negative at 0.5.
    looser = calibrate_pairs(pairs, HashEmbedder(), target_false_hit=0.5, lexical_weight=0.0)
    assert looser.threshold is not None and looser.threshold <= 0.5 < result.threshold


def test_a_guarded_negative_never_counts_as_a_hit(tmp_path: Path) -> None:
    rows = [
        {"a": "how do I enable logging", "b": "how do I disable logging", "label": 0},
        {"a": "how do I enable logging", "b": "how do I enable logging now", "label": 1},
    ]
    result = calibrate_pairs(
        load_pairs(_write_jsonl(tmp_path / "p.jsonl", rows)), HashEmbedder(), target_false_hit=0.0
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
    assert set(result.config_values()) == {"threshold", "confidence", "scorer"}
