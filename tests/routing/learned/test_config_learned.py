"""`[router.learned]` in promptkit.toml turns a trained policy on, relative to the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.config import load_config
from promptkit.errors import ConfigError, RoutingError
from promptkit.ledger import Ledger
from promptkit.routing import Router
from promptkit.routing.learned import LearnedStartTier, train_from_ledger
from tests.routing.learned.workload import CONFIG, make_router, run_workload


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    folder = tmp_path_factory.mktemp("learned")
    ledger = Ledger(folder / "ledger.sqlite")
    router, _, _ = make_router()
    run = ledger.new_run()
    asyncio.run(run_workload(router, ledger, run))
    path = train_from_ledger(ledger.entries(run), threshold=0.3).save(folder / "policy.json")
    ledger.close()
    return path


def _router(tmp_path: Path, learned: str) -> Router:
    (tmp_path / "promptkit.toml").write_text(CONFIG.format(learned=learned), encoding="utf-8")
    return Router.from_config(load_config(path=tmp_path / "promptkit.toml"))


def test_policy_path_is_relative_to_the_config_file(tmp_path: Path, policy_file: Path) -> None:
    (tmp_path / "policy.json").write_bytes(policy_file.read_bytes())
    router = _router(tmp_path, 'policy = "policy.json"\nthreshold = 0.4\nskip_to = "strong"')
    assert isinstance(router.start_policy, LearnedStartTier)
    assert router.start_policy.threshold == 0.4 and router.start_policy.skip_to == "strong"


def test_unknown_key_and_missing_policy_are_named(tmp_path: Path, policy_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[router.learned\].thresold"):
        _router(tmp_path, f'policy = "{policy_file}"\nthresold = 0.4')
    with pytest.raises(ConfigError, match="needs policy"):
        _router(tmp_path, "threshold = 0.4")
    with pytest.raises(RoutingError, match="nowhere.json"):
        _router(tmp_path, 'policy = "nowhere.json"')
