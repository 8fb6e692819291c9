"""`promptkit init`: a commented promptkit.toml whose tiers are the catalog's local models."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from promptkit.cli import cli
from promptkit.config import load_config
from promptkit.models import catalog_entry
from promptkit.routing import Router


def test_init_writes_a_config_that_loads_with_the_local_models_as_tiers(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = load_config(path=tmp_path / "promptkit.toml")
    assert [config.models[n].model for n in ("small", "medium")] == [
        "local:qwen2.5-coder-0.5b",
        "local:qwen2.5-coder-1.5b",
    ]
    assert all(catalog_entry(m.model.removeprefix("local:")) is not None for m in config.models.values())
    assert config.router["tiers"] == ["small", "medium"]
    assert config.models["small"].options["timeout_s"] > 0 and config.models["small"].options["n_ctx"] >= 4096
    router = Router.from_config(config)
    assert [t.name for t in router.tiers] == ["small", "medium"]
    text = (tmp_path / "promptkit.toml").read_text()
    assert "# [models.remote]" in text and "api_key_env" in text, "a remote tier to uncomment"


def test_init_does_not_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "promptkit.toml").write_text("# mine\n")
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "already exists" in str(result.exception)
    assert (tmp_path / "promptkit.toml").read_text() == "# mine\n"
    assert CliRunner().invoke(cli, ["init", "--dir", str(tmp_path), "--force"]).exit_code == 0
    assert "[models.small]" in (tmp_path / "promptkit.toml").read_text()
