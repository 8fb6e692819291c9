"""``promptkit route eval`` / ``route train``: JSON shape, written files, training from a ledger, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.evals.routing import default_data_dir
from promptkit.ledger import LEDGER_FILE, Ledger
from promptkit.routing.learned import RoutingPolicy
from tests.routing.learned.workload import make_router, run_workload


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    folder = default_data_dir()
    if not folder.is_dir():
        pytest.skip(f"RouteLLM data not found at {folder} (shared/data is not beside the repository)")
    return folder


def test_eval_json_shape(capsys, data_dir):
    code = main(
        [
            "route", "eval", "--benchmark", "gsm8k", "--data", str(data_dir), "--limit", "200",
            "--routers", "random,oracle", "--routers", "cascade,always-weak", "--bootstrap", "50", "--folds", "3",
            "--json",
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    (bench,) = doc["benchmarks"]
    assert bench["benchmark"] == "gsm8k" and bench["data"]["queries"] == 200 and bench["folds"] == 3
    assert bench["reference"]["apgr"] == 0.622 and "in-domain" in bench["note"]
    rows = {r["router"]: r for r in bench["routers"]}
    assert set(rows) == {"random", "oracle", "cascade", "always-weak"}
    for name in ("random", "oracle", "cascade"):
        row = rows[name]
        assert {"apgr", "apgr_ci", "cpt_20", "cpt_50", "cpt_80", "cpt_50_ci"} <= set(row)
        assert row["apgr_ci"][0] <= row["apgr"] <= row["apgr_ci"][1]
    assert rows["always-weak"]["apgr"] is None and rows["always-weak"]["strong_share"] == 0.0
    assert rows["oracle"]["apgr"] > rows["cascade"]["apgr"] > rows["random"]["apgr"]


def test_eval_writes_markdown_json_and_a_plot(tmp_path, capsys, data_dir):
    out = tmp_path / "report"
    code = main(
        [
            "route", "eval", "--benchmark", "mt_bench", "--data", str(data_dir), "--routers",
            "random,oracle,cascade-heuristic", "--cost-routers", "oracle", "--bootstrap", "20", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "mt_bench" in text and "RouteLLM MF (published)" in text
    md = (out / "route_eval.md").read_text()
    assert "| oracle |" in md and "0.802" in md and "in-domain" in md
    doc = json.loads((out / "route_eval.json").read_text())
    assert len(doc["benchmarks"][0]["routers"][0]["curve"]) == 101
    png = (out / "mt_bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # The dollar table too: MT-Bench's categories are its domains, so both splits.
    assert [c["split"] for c in doc["cost"]] == ["in-domain", "cross-domain"]
    assert (out / "mt_bench_cross-domain_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_errors(capsys, data_dir, tmp_path):
    assert main(["route", "eval", "--data", str(data_dir), "--routers", "telepathy"]) == 2
    assert "unknown router" in capsys.readouterr().err
    assert (
        main(["route", "eval", "--benchmark", "gsm8k", "--data", str(tmp_path), "--routers", "random"]) == 2
    )
    assert str(tmp_path / "gsm8k") in capsys.readouterr().err


async def _fill_ledger(path: Path) -> None:
    with Ledger(path) as ledger:
        router, _, _ = make_router()
        await run_workload(router, ledger, ledger.new_run("workload"))


def test_train_from_the_ledger(tmp_path, capsys):
    import asyncio

    ledger = tmp_path / "state" / LEDGER_FILE
    ledger.parent.mkdir(parents=True)
    asyncio.run(_fill_ledger(ledger))
    policy_path = tmp_path / "policy.json"
    assert main(["route", "train", "--out", str(policy_path), "--threshold", "0.3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (
        info["policy"] == str(policy_path)
        and info["trained"]["rows"] == 12
        and info["trained"]["passed"] == 6
    )
    policy = RoutingPolicy.load(policy_path)
    assert policy.threshold == 0.3
    assert (
        policy.predict_pass({"kind": "hard", "template": "solve"})
        < 0.3
        < policy.predict_pass({"kind": "easy"})
    )
    assert (
        main(
            ["route", "train", "--ledger", str(ledger), "--run", "latest", "--out", str(policy_path)]
            + ["--policy", "skip"]
        )
        == 0
    )
    assert "12 calls, 6 passed" in capsys.readouterr().out


def test_train_a_tier_policy_from_the_ledger_warns_on_too_few_calls(tmp_path, capsys):
    import asyncio

    from promptkit.routing import RouteFeatures
    from promptkit.routing.learned import LearnedStartTier, TierPolicy, load_policy

    ledger = tmp_path / "state" / LEDGER_FILE
    ledger.parent.mkdir(parents=True)
    asyncio.run(_fill_ledger(ledger))
    path = tmp_path / "tiers.json"
    assert main(["route", "train", "--out", str(path)]) == 0
    captured = capsys.readouterr()
    assert "tier policy:" in captured.out and "tier 0 (cheap): 12 calls, 6 accepted" in captured.out
    assert "  solve (hard): starts at tier " in captured.out  # too few calls here: the same start for all
    assert "warning: tier 0: only 12 judged call(s), fewer than the 20 needed" in captured.err
    assert "warning: tier 1: only 6 judged call(s)" in captured.err
    assert main(["route", "train", "--out", str(path), "--min-calls", "5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "tiers" and info["warnings"] == []
    assert [t["calls"] for t in info["tiers"]] == [12, 6] and info["cost_weight"] > 0
    # The decisions, per kind of call in the ledger: hard calls skip the cheap tier, easy ones start there.
    starts = {(s["template"], s["kind"]): s["start_tier"] for s in info["trained"]["starts"]}
    assert starts == {("solve", "easy"): 0, ("solve", "hard"): 1}
    policy = load_policy(path)
    assert isinstance(policy, TierPolicy)
    start = LearnedStartTier(policy)
    tiers = ["cheap", "strong"]
    assert start.start_tier(RouteFeatures(template="solve", kind="hard"), tiers) == 1
    assert start.start_tier(RouteFeatures(template="solve", kind="easy"), tiers) is None
    assert main(["route", "train", "--out", str(path), "--policy", "tiers", "--threshold", "0.3"]) == 2
    assert "--threshold applies to a skip policy" in capsys.readouterr().err


def test_train_errors(tmp_path, capsys):
    assert main(["route", "train", "--ledger", str(tmp_path / "none.sqlite"), "--out", "p.json"]) == 1
    err = capsys.readouterr().err
    assert "ledger not found" in err and "none.sqlite" in err
    assert main(["route", "train", "--routellm", "nonsense", "--out", "p.json"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert main(["route", "train", "--threshold", "2", "--out", "p.json"]) == 1


def _no_embedder(*args: object) -> None:
    raise AssertionError("lexical routers must not load the embedding model")


def test_eval_lexical_routers_need_no_embedder(capsys, data_dir, monkeypatch):
    monkeypatch.setattr("promptkit.cli.route._embedder", _no_embedder)
    code = main(
        [
            "route", "eval", "--benchmark", "gsm8k", "--data", str(data_dir), "--limit", "200",
            "--routers", "random,lexical-logreg,lexical-knn", "--bootstrap", "20", "--folds", "3", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    rows = {r["router"]: r for r in json.loads(capsys.readouterr().out)["benchmarks"][0]["routers"]}
    assert set(rows) == {"random", "lexical-logreg", "lexical-knn"}
    for name in ("lexical-logreg", "lexical-knn"):
        assert rows[name]["kind"] == "prompt" and 0.0 < rows[name]["apgr"] < 1.0
        assert rows[name]["apgr_ci"][0] <= rows[name]["apgr"] <= rows[name]["apgr_ci"][1]


def test_train_lexical_policy_from_routellm(tmp_path, capsys, data_dir, monkeypatch):
    from promptkit.evals.routing import load_routellm
    from promptkit.routing import RouteFeatures
    from promptkit.routing.learned import LearnedStartTier

    monkeypatch.setattr("promptkit.cli.route._embedder", _no_embedder)
    out = tmp_path / "lexical.json"
    code = main(
        [
            "route", "train", "--routellm", "gsm8k", "--data", str(data_dir), "--limit", "200",
            "--features", "lexical", "--classifier", "knn", "--out", str(out), "--json",
        ]
    )  # fmt: skip
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["features"] == ["text"] and info["trained"]["features"] == "lexical"
    policy = RoutingPolicy.load(out)
    assert policy.needs_text and not policy.needs_embedding and policy.model.kind == "knn"
    start = LearnedStartTier(policy)  # accepted: it decides from what the router sees
    prompt = load_routellm("gsm8k", data_dir).prompts[-1]
    p = start.pass_probability(RouteFeatures(template="q", text=prompt))
    assert 0.0 < p < 1.0 and p == pytest.approx(policy.predict_pass(text=prompt))


def test_train_features_needs_routellm(capsys, tmp_path):
    code = main(["route", "train", "--features", "lexical", "--out", str(tmp_path / "p.json")])
    assert code == 2 and "--features applies to --routellm" in capsys.readouterr().err


def test_eval_a_routerbench_folder_prints_the_dollar_table(tmp_path, capsys):
    from tests.evals.routing.routerbench_fixture import write_wide

    folder = write_wide(tmp_path / "routerbench", n=40)
    args = ["route", "eval", "--data", str(folder), "--bootstrap", "20", "--folds", "3"]
    assert main([*args, "--cost-routers", "random-mix,oracle,knn,cascade", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmarks"] == [] and [c["split"] for c in doc["cost"]] == ["in-domain", "cross-domain"]
    inside = doc["cost"][0]
    assert [m["model"] for m in inside["single_models"]] == ["cheap/small", "mid/medium", "big/large"]
    assert inside["data"]["domains"] == {"arith": 40, "trivia": 40}
    rows = {r["router"]: r for r in inside["routers"]}
    assert set(rows) == {"random-mix", "oracle", "knn", "cascade"}
    assert rows["oracle"]["aiq"] >= rows["knn"]["aiq"] > rows["random-mix"]["aiq"]
    assert rows["knn"]["aiq_ci"][0] <= rows["knn"]["aiq"] <= rows["knn"]["aiq_ci"][1]
    assert main([*args, "--cost-routers", "random-mix,knn", "--split", "in-domain"]) == 0
    text = capsys.readouterr().out
    assert "big/large (best)" in text and "$ / 1k prompts" in text and "AIQ" in text
    assert "routerbench (in-domain)" in text and "cross-domain)" not in text


def test_eval_column_mapping_and_a_bad_column(tmp_path, capsys):
    from tests.evals.routing.routerbench_fixture import write_long

    path = write_long(tmp_path / "long.jsonl", n=20, prompt_key="question")
    args = ["route", "eval", "--data", str(path), "--bootstrap", "0", "--cost-routers", "oracle", "--json"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "long.jsonl:1: prompt" in err and "--column prompt=NAME" in err
    assert main([*args, "--column", "prompt=question"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost"][0]["data"]["prompts"] == 40
    assert main([*args, "--column", "prompt"]) == 2
    assert "expected ROLE=NAME" in capsys.readouterr().err
