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
    assert config.router["tiers"] == [{"model": "small", "attempts": 1}, "medium"]
    assert config.models["small"].options["timeout_s"] > 0 and config.models["small"].options["n_ctx"] >= 4096
    router = Router.from_config(config)
    assert [t.name for t in router.tiers] == ["small", "medium"]
    # The 0.5B's failed answer escalates at once; the 1.5B gets a repair.
    assert [t.max_attempts for t in router.tiers] == [1, None] and router.max_attempts_per_tier == 2
    text = (tmp_path / "promptkit.toml").read_text()
    assert "# [models.remote]" in text and "api_key_env" in text, "a remote tier to uncomment"


def test_the_commented_learned_router_works_once_uncommented(tmp_path: Path) -> None:
    # What init's comment says to do: train a policy from the ledger, uncomment [router.learned].
    from promptkit.ledger import LedgerEntry
    from promptkit.routing.learned import LearnedStartTier, train_tier_policy

    assert CliRunner().invoke(cli, ["init", "--dir", str(tmp_path)]).exit_code == 0
    rows = [
        LedgerEntry(
            run_id="r", call_id="a", model="small", tier=0, outcome="invalid", accepted=False, latency_s=9
        ),
        LedgerEntry(
            run_id="r", call_id="b", model="medium", tier=1, outcome="ok", accepted=True, latency_s=20
        ),
    ]
    policy, _ = train_tier_policy(rows, min_calls=1)
    policy.save(tmp_path / "tier-policy.json")
    config_path = tmp_path / "promptkit.toml"
    lines = config_path.read_text().splitlines()
    start = lines.index("# [router.learned]")
    for i in range(start, start + 3):
        lines[i] = lines[i].removeprefix("# ")
    config_path.write_text("\n".join(lines) + "\n")
    router = Router.from_config(load_config(path=config_path))
    assert isinstance(router.start_policy, LearnedStartTier)
    assert router.start_policy.explore == 0.05


def test_init_does_not_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "promptkit.toml").write_text("# mine\n")
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "already exists" in str(result.exception)
    assert (tmp_path / "promptkit.toml").read_text() == "# mine\n"
    assert CliRunner().invoke(cli, ["init", "--dir", str(tmp_path), "--force"]).exit_code == 0
    assert "[models.small]" in (tmp_path / "promptkit.toml").read_text()


def test_init_writes_a_sample_bug_that_the_readme_commands_run_on(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import subprocess
    import sys

    import yaml

    from promptkit.backends import FunctionBackend, register_backend
    from promptkit.cli import main
    from promptkit.generation import reset_defaults
    from promptkit.prompts import load_template

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    assert main(["init"]) == 0
    assert "bug.yaml" in capsys.readouterr().out
    inputs = yaml.safe_load((tmp_path / "bug.yaml").read_text())
    load_template("debug").render(inputs)  # every required input, nothing unknown

    # my_module.py fails the way bug.yaml says, so `--input "error=$(python my_module.py 2>&1 | tail -1)"` works.
    run = subprocess.run([sys.executable, "my_module.py"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0 and run.stderr.strip().splitlines()[-1] == inputs["error"]
    assert inputs["code"].strip() in (tmp_path / "my_module.py").read_text()
    code = main(["render", "debug", "--input", "code=@my_module.py", "--inputs", "bug.yaml", "--json"])
    assert code == 0 and "def average" in capsys.readouterr().out

    # `generate debug --router promptkit.toml --inputs bug.yaml`: the init config's own router, with the two
    # local models swapped for a function backend (the real ones are not loaded in tests).
    def fix(request) -> str:
        assert "ZeroDivisionError" in request.messages[-1].content
        return (
            "## Diagnosis\nlen(values) is 0.\n\n## Fix\n```\ndef average(values):\n"
            "    return sum(values) / len(values) if values else 0.0\n```\n\n## Explanation\nGuard it.\n"
        )

    register_backend("initfix", lambda target, **options: FunctionBackend(fix, name=f"initfix:{target}"))
    config = (tmp_path / "promptkit.toml").read_text()
    (tmp_path / "promptkit.toml").write_text(config.replace('"local:qwen2.5-coder-', '"initfix:qwen-'))
    reset_defaults()
    try:
        code = main(["generate", "debug", "--router", "promptkit.toml", "--inputs", "bug.yaml", "--no-cache"])
    finally:
        reset_defaults()
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "if values else 0.0" in out and "tier=small" in err


def test_init_keeps_existing_sample_files_and_can_skip_them(tmp_path: Path) -> None:
    (tmp_path / "bug.yaml").write_text("language: mine\n")
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and (tmp_path / "bug.yaml").read_text() == "language: mine\n"
    assert (tmp_path / "my_module.py").exists()
    other = tmp_path / "bare"
    assert CliRunner().invoke(cli, ["init", "--dir", str(other), "--no-samples"]).exit_code == 0
    assert sorted(p.name for p in other.iterdir()) == ["promptkit.toml"]
    assert CliRunner().invoke(cli, ["init", "--dir", str(tmp_path), "--force"]).exit_code == 0
    assert "average" in (tmp_path / "bug.yaml").read_text()
