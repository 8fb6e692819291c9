"""Fixtures for the model catalog and store: a private store folder, a user catalog folder, test models."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store (PROMPTKIT_MODELS) and no user catalog unless it adds one."""
    store = tmp_path / "store"
    monkeypatch.setenv("PROMPTKIT_MODELS", str(store))
    monkeypatch.delenv("PROMPTKIT_CATALOG_PATH", raising=False)
    return store


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_entry(folder: Path, name: str, fields: dict[str, Any], sources: list[dict[str, Any]]) -> Path:
    """A catalog TOML file ``folder/name.toml``, written by hand the way a user would."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
    for source in sources:
        lines += ["", "[[sources]]", *(f"{key} = {_toml_value(value)}" for key, value in source.items())]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class FakeModel:
    name: str
    file: str
    data: bytes
    sha256: str
    catalog: Path  # the user catalog folder (on PROMPTKIT_CATALOG_PATH)
    original: Path  # a correct copy of the model, outside the store

    def fields(self) -> dict[str, Any]:
        return {
            "family": "test",
            "parameters": "1K",
            "quantization": "none",
            "file": self.file,
            "size": len(self.data),
            "sha256": self.sha256,
            "license": "MIT",
            "context_length": 512,
        }

    def write(self, sources: list[dict[str, Any]]) -> Path:
        return write_entry(self.catalog, self.name, self.fields(), sources)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    """A 2.5 MiB model (crosses the 1 MiB chunks) in a user catalog, whose only source is a file path that
    does not exist: tests add the sources they need with ``fake_model.write([...])``."""
    data = bytes(range(256)) * (10 * 1024) + b"tail-of-the-test-model"
    catalog = tmp_path / "catalog"
    original = tmp_path / "downloads" / "tiny-test.gguf"
    original.parent.mkdir()
    original.write_bytes(data)
    model = FakeModel(
        name="tiny-test",
        file="tiny-test.gguf",
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        catalog=catalog,
        original=original,
    )
    model.write([{"kind": "file", "path": str(tmp_path / "nowhere" / "tiny-test.gguf")}])
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", str(catalog))
    return model


def corrupt_copy(source: Path, target: Path, offset: int = 12345) -> Path:
    """A copy of ``source`` with one byte changed."""
    data = bytearray(source.read_bytes())
    data[offset] ^= 0xFF
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))
    return target


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal, valid pure-Python wheel holding ``files`` (archive path -> bytes)."""
    dist = package.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode()
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: promptkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return wheel
