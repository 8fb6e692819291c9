"""Policy files: a versioned JSON round trip, and clear RoutingErrors naming the file when it is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptkit.errors import RoutingError
from promptkit.evals.routing import RouteLLMData, train_from_routellm
from promptkit.ledger import LedgerEntry
from promptkit.routing.learned import POLICY_SCHEMA_VERSION, RoutingPolicy, train_from_ledger


def _entries() -> list[LedgerEntry]:
    out = []
    for i in range(40):
        kind = "hard" if i % 3 == 0 else "easy"
        passed = kind == "easy" or i % 9 == 0
        out.append(
            LedgerEntry(
                run_id="r",
                call_id=f"c{i}",
                model="cheap",
                tier=0,
                template="t1" if i % 2 else "t2",
                outcome="ok" if passed else "invalid",
                accepted=passed,
                features={
                    "template": "t1" if i % 2 else "t2",
                    "kind": kind,
                    "tags": ["x"],
                    "input_tokens": 50 + i,
                },
            )
        )
        if not passed:
            out.append(
                out[-1].model_copy(
                    update={"attempt": 2, "tier": 1, "model": "strong", "outcome": "ok", "accepted": True}
                )
            )
    # A call whose cheap attempt had only a transport fault says nothing about the cheap tier's quality.
    out.append(LedgerEntry(run_id="r", call_id="z", model="cheap", tier=0, outcome="transport_error"))
    return out


def test_round_trip(tmp_path: Path):
    policy = train_from_ledger(_entries(), threshold=0.25, source="test")
    assert policy.trained["rows"] == 40 and policy.trained["skipped_calls"] == 1
    path = policy.save(tmp_path / "sub" / "policy.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == POLICY_SCHEMA_VERSION and data["format"] == "promptkit.routing-policy"
    assert data["model"]["kind"] == "logreg" and data["threshold"] == 0.25
    loaded = RoutingPolicy.load(path)
    for features in (
        {"kind": "hard", "template": "t1", "input_tokens": 60},
        {"kind": "easy", "template": "t2"},
    ):
        assert loaded.predict_pass(features) == pytest.approx(policy.predict_pass(features))
    assert loaded.predict_pass({"kind": "hard"}) < loaded.predict_pass({"kind": "easy"})


def test_knn_policy_round_trip(tmp_path: Path):
    policy = train_from_ledger(_entries(), model="knn")
    loaded = RoutingPolicy.load(policy.save(tmp_path / "knn.json"))
    assert loaded.model.kind == "knn"
    assert loaded.predict_pass({"kind": "easy", "template": "t1", "input_tokens": 70}) == pytest.approx(
        policy.predict_pass({"kind": "easy", "template": "t1", "input_tokens": 70})
    )


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.json"
    with pytest.raises(RoutingError, match="not found") as info:
        RoutingPolicy.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema_version": 1,\n "format": ', "corrupt routing policy"),
        ("[1, 2]", "must be a JSON object"),
        ('{"format": "something-else", "schema_version": 1}', "not a promptkit routing policy"),
        ('{"format": "promptkit.routing-policy", "schema_version": 99}', "schema_version 99"),
        ('{"format": "promptkit.routing-policy", "schema_version": 1, "features": []}', "malformed policy"),
    ],
)
def test_corrupt_files(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingError, match=message) as info:
        RoutingPolicy.load(path)
    assert str(path) in str(info.value)


def test_corrupt_json_names_the_line(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1,\n "format": ', encoding="utf-8")
    with pytest.raises(RoutingError) as info:
        RoutingPolicy.load(path)
    assert f"{path}:2" in str(info.value)


def test_feature_width_must_match_the_model(tmp_path: Path):
    data = train_from_ledger(_entries()).to_dict()
    data["features"][0]["values"].append("an extra template")
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RoutingError, match="the model takes"):
        RoutingPolicy.load(path)


def test_empty_ledger_is_an_error():
    with pytest.raises(RoutingError, match="nothing to learn"):
        train_from_ledger([])


def test_routellm_policy_needs_the_embedding(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(n, 8)).astype(np.float32)
    weak = (X[:, 0] > 0).astype(float)
    data = RouteLLMData(
        "gsm8k", [f"q{i}" for i in range(n)], weak, np.ones(n), None, ["g"] * n, False, n, 0, tmp_path
    )
    policy = train_from_routellm(data, X, embedder_id="test-embedder")
    loaded = RoutingPolicy.load(policy.save(tmp_path / "p.json"))
    assert loaded.needs_embedding and not loaded.uses_router_features_only
    assert (
        loaded.predict_pass(embedding=[3.0] + [0.0] * 7)
        > 0.8
        > 0.2
        > loaded.predict_pass(embedding=[-3.0] + [0.0] * 7)
    )
    with pytest.raises(RoutingError, match="needs the prompt"):
        loaded.predict_pass({})
    with pytest.raises(RoutingError, match="dimensions"):
        loaded.predict_pass(embedding=[0.0] * 3)
