"""Lexical routers: features, policies that decide from the prompt text, generate's plumbing, and ``route eval``."""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promptkit.errors import ConfigError, RoutingError
from promptkit.evals.routing import RouteLLMData, evaluate_benchmark, load_routellm, train_from_routellm
from promptkit.ledger import Ledger
from promptkit.routing import RouteFeatures
from promptkit.routing.learned import LEXICAL_STATS, LearnedStartTier, LexicalFeaturizer, RoutingPolicy
from promptkit.routing.learned._lexical import prompt_stats
from tests.routing.learned.workload import make_router, run_workload

_TOPICS_HARD = ["integral of the curve", "eigenvalues of the matrix", "prove the theorem", "HARD task"]
_TOPICS_EASY = ["capital of France", "colour of the sky", "opposite of cold", "easy task"]


def _synthetic(tmp_path: Path, n: int = 120, graded: bool = False) -> RouteLLMData:
    """The weak model fails on hard topics only; the strong one is always right."""
    prompts, weak = [], []
    for i in range(n):
        hard = i % 2 == 0
        topic = (_TOPICS_HARD if hard else _TOPICS_EASY)[(i // 2) % 4]
        prompts.append(f"Solve: {topic} number {i}")
        weak.append((3.0 if hard else 9.0) if graded else (0.0 if hard else 1.0))
    strong = np.full(n, 9.0 if graded else 1.0)
    return RouteLLMData(
        "mt_bench" if graded else "gsm8k",
        prompts,
        np.asarray(weak),
        strong,
        None,
        ["g"] * n,
        graded,
        n,
        0,
        tmp_path,
    )


def test_prompt_stats_read_the_prompt():
    stats = dict(zip(LEXICAL_STATS, prompt_stats("What is 12 + 30?\nA) 42\nB) 41"), strict=True))
    assert stats["starts_what"] == 1.0 and stats["starts_how"] == 0.0 and stats["has_what"] == 1.0
    assert stats["question_marks"] == 1.0 and stats["choice_markers"] == 2.0
    assert stats["log_numbers"] == pytest.approx(math.log1p(4))
    assert stats["log_lines"] == pytest.approx(math.log1p(2)) and stats["digit_share"] > 0.2
    assert dict(zip(LEXICAL_STATS, prompt_stats("def f():\n    return 1"), strict=True))["code"] == 1.0
    assert prompt_stats("") == [0.0] * len(LEXICAL_STATS)


def test_featurizer_paths_agree_and_round_trip():
    texts = ["What is the capital of France?", "Compute 17 * 23 and explain.", "Write a poem about rain."]
    f = LexicalFeaturizer(dim=64).fit(texts)
    X = f.transform(texts)
    assert X.shape == (3, f.width) == (3, 64 + len(LEXICAL_STATS))
    assert np.allclose(np.linalg.norm(X[:, :64], axis=1), 1.0)
    rebuilt = LexicalFeaturizer.from_dict(json.loads(json.dumps(f.to_dict())))
    for i, text in enumerate(texts):  # the per-request path (no numpy) matches the batch path
        assert np.allclose(f.vector(text), X[i]) and np.allclose(rebuilt.vector(text), X[i])
    assert not np.allclose(X[0], X[1])


def test_idf_downweights_terms_every_prompt_has():
    texts = ["alpha common", "beta common", "gamma common", "delta common"]
    f = LexicalFeaturizer(dim=4096).fit(texts)
    vec = np.asarray(f.vector("alpha common")[:4096])
    import zlib

    def weight(term: str) -> float:
        return float(vec[zlib.crc32(term.encode()) % 4096])

    assert weight("w:alpha") > weight("w:common") > 0.0


def test_lexical_policy_decides_from_text_and_round_trips(tmp_path: Path):
    policy = train_from_routellm(_synthetic(tmp_path), features="lexical", lexical_dim=64)
    assert policy.needs_text and not policy.needs_embedding and policy.uses_router_features_only
    loaded = RoutingPolicy.load(policy.save(tmp_path / "lex.json"))
    hard, easy = "Solve: integral of the curve number 999", "Solve: capital of France number 999"
    assert loaded.predict_pass(text=hard) < 0.2 < 0.8 < loaded.predict_pass(text=easy)
    assert loaded.predict_pass(RouteFeatures(text=hard)) == pytest.approx(policy.predict_pass(text=hard))
    assert loaded.predict_pass({"text": easy}) == pytest.approx(policy.predict_pass(text=easy))
    with pytest.raises(RoutingError, match="prompt text"):
        loaded.predict_pass(RouteFeatures(template="t"))
    doc = json.loads((tmp_path / "lex.json").read_text())
    assert doc["trained"]["features"] == "lexical" and doc["features"][0]["type"] == "lexical"


def test_lexical_knn_policy(tmp_path: Path):
    policy = train_from_routellm(_synthetic(tmp_path), features="lexical", lexical_dim=64, model="knn")
    loaded = RoutingPolicy.load(policy.save(tmp_path / "knn.json"))
    assert loaded.predict_pass(text="Solve: prove the theorem number 5") < 0.3
    assert loaded.predict_pass(text="Solve: colour of the sky number 5") > 0.7


def test_malformed_lexical_block_names_the_file(tmp_path: Path):
    policy = train_from_routellm(_synthetic(tmp_path), features="lexical", lexical_dim=64)
    doc = policy.to_dict()
    doc["features"][0]["idf"] = doc["features"][0]["idf"][:-1]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(RoutingError, match="malformed policy") as info:
        RoutingPolicy.load(path)
    assert str(path) in str(info.value)
    doc = policy.to_dict()
    doc["features"][0]["stats"] = ["log_chars"]
    path.write_text(json.dumps(doc))
    with pytest.raises(RoutingError, match="retrain"):
        RoutingPolicy.load(path)


def test_unknown_feature_set_is_refused(tmp_path: Path):
    with pytest.raises(RoutingError, match="expected 'embedding' or 'lexical'"):
        train_from_routellm(_synthetic(tmp_path), features="bag-of-vibes")
    with pytest.raises(RoutingError, match="embeddings"):
        train_from_routellm(_synthetic(tmp_path))


def test_route_features_keep_text_out_of_the_ledger_dict():
    features = RouteFeatures(template="t", text="my secret prompt")
    assert "text" not in features.as_dict() and "secret" not in repr(features)
    assert features == RouteFeatures(template="t")


class _Recording:
    def __init__(self) -> None:
        self.texts: list[str | None] = []

    def start_tier(self, features: RouteFeatures, tiers: Sequence[Any]) -> int | str | None:
        self.texts.append(features.text)
        return None


def test_generate_gives_the_router_the_last_user_message(tmp_path: Path):
    recorder = _Recording()
    router, _, _ = make_router(recorder)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        asyncio.run(run_workload(router, ledger, "r1"))
        stored = [e.features for e in ledger.entries()]
    assert recorder.texts[0] == "Solve: easy task number 0"
    assert recorder.texts[-1] == "Solve: HARD task number 5"
    assert all("text" not in (f or {}) for f in stored)  # prompts stay out of the ledger


def test_learned_start_tier_skips_the_cheap_tier_on_text(tmp_path: Path):
    start = LearnedStartTier(train_from_routellm(_synthetic(tmp_path), features="lexical", lexical_dim=64))
    router, cheap, strong = make_router(start)
    calls: list[str] = []
    original = cheap.fn

    def counting(request: Any) -> str:
        calls.append(request.messages[-1].content)
        return str(original(request))

    cheap.fn = counting
    with Ledger(tmp_path / "l.sqlite") as ledger:
        asyncio.run(run_workload(router, ledger, "r1"))
    # The synthetic policy learnt "HARD task" fails the weak model: those calls start on the strong tier.
    assert calls == [f"Solve: easy task number {i}" for i in range(6)]
    # A caller without the prompt text (the plan executor) starts cheap, as with no policy, and is told once.
    hard = "Solve: HARD task number 1"
    assert start.start_tier(RouteFeatures(template="solve", text=hard), [0, 1]) == 1
    with pytest.warns(RuntimeWarning, match="lacks"):
        assert start.start_tier(RouteFeatures(template="solve"), [0, 1]) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert start.start_tier(RouteFeatures(template="solve"), [0, 1]) is None


def test_embedding_policy_still_refused_by_the_start_tier(tmp_path: Path):
    data = _synthetic(tmp_path, n=40)
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ConfigError, match="lexical"):
        LearnedStartTier(train_from_routellm(data, X, embedder_id="e"))


@pytest.mark.parametrize("graded", [False, True])
def test_lexical_routers_in_route_eval(tmp_path: Path, graded: bool):
    report = evaluate_benchmark(
        _synthetic(tmp_path, graded=graded),
        routers=["random", "oracle", "lexical-logreg", "lexical-knn"],
        folds=3,
        bootstrap=50,
    )
    apgr = {r.name: r.metrics.apgr for r in report.results if r.metrics is not None}
    assert not report.skipped
    # Half the queries gain from the strong model, so even the oracle tops out at APGR 0.75.
    assert apgr["lexical-logreg"] == pytest.approx(apgr["oracle"], abs=0.01)
    assert apgr["lexical-knn"] == pytest.approx(apgr["oracle"], abs=0.01)
    assert apgr["random"] < apgr["oracle"] - 0.1


def test_lexical_routers_beat_random_on_recorded_gsm8k(routellm_dir: Path):
    data = load_routellm("gsm8k", routellm_dir, limit=500, seed=0)
    report = evaluate_benchmark(data, routers=["random", "lexical-knn"], folds=5, bootstrap=0)
    apgr = {r.name: r.metrics.apgr for r in report.results if r.metrics is not None}
    assert apgr["lexical-knn"] > apgr["random"] + 0.03
