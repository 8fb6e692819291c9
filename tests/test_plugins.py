"""The plugin registry: lazy built-ins, run-time registration, entry points of an installed distribution (a
fake one on sys.path, found by importlib.metadata like any other), unknown names and bad references."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from promptkit._plugins import Registry, did_you_mean, import_ref, split_ref
from promptkit.errors import BackendUnavailable, ConfigError, EvalError, PromptkitError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path, as site-packages would be; modules and distributions are written into it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _module(site: Path, body: str) -> str:
    """A fresh module (a unique name, so no test sees another's import) holding ``body``."""
    name = f"pk_plugin_{uuid.uuid4().hex[:10]}"
    (site / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return name


def _distribution(site: Path, dist: str, groups: dict[str, dict[str, str]]) -> Path:
    """An installed distribution's metadata: ``<dist>-1.0.dist-info`` with METADATA and entry_points.txt."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    lines = []
    for group, points in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return info


def _group() -> str:
    return f"promptkit.test-{uuid.uuid4().hex[:8]}"


# ---- import_ref --------------------------------------------------------------------------------------------


def test_import_ref_finds_dotted_attributes(site: Path) -> None:
    mod = _module(site, "class Outer:\n    class Inner:\n        VALUE = 42\n")
    assert import_ref(f"{mod}:Outer.Inner.VALUE") == 42
    assert import_ref(f" {mod} : Outer ").__name__ == "Outer"  # spaces around the parts are allowed
    assert import_ref(mod, module_ok=True).__name__ == mod


@pytest.mark.parametrize("ref", ["", "no_colon", "pkg.mod:", ":attr", "my-pkg:X", "pkg:attr:more", "1pkg:x"])
def test_import_ref_rejects_malformed_references(ref: str) -> None:
    with pytest.raises(ConfigError) as info:
        import_ref(ref, what="backend", location="promptkit.toml:3", error=ConfigError)
    assert str(info.value) == f"promptkit.toml:3: backend must be 'package.module:attr', got {ref!r}"
    assert split_ref(ref) is None or ref == "no_colon"


def test_import_ref_names_the_reference_and_where_it_came_from(site: Path) -> None:
    with pytest.raises(BackendUnavailable) as info:
        import_ref(
            "no_such_module_xyz:Thing", what="backend", location="here", unavailable=BackendUnavailable
        )
    assert str(info.value) == (
        "here: cannot import backend from 'no_such_module_xyz:Thing': "
        "ModuleNotFoundError: No module named 'no_such_module_xyz'"
    )
    mod = _module(site, "class Outer:\n    pass\n")
    with pytest.raises(EvalError) as caught:
        import_ref(f"{mod}:Outer.Missing", what="embedder", location="suite.yaml:9", error=EvalError)
    assert caught.value.location == "suite.yaml:9"
    assert caught.value.message == (
        f"cannot import embedder from '{mod}:Outer.Missing': '{mod}.Outer' has no attribute 'Missing'"
    )
    # A module that fails while importing is the reference's error too, whatever it raised.
    broken = _module(site, "raise RuntimeError('boom at import')\n")
    with pytest.raises(PromptkitError, match=r"RuntimeError: boom at import"):
        import_ref(f"{broken}:x")


def test_did_you_mean() -> None:
    assert did_you_mean("widgit", ["gadget", "widget"]) == " (did you mean 'widget'?)"
    assert did_you_mean("zzzz", ["gadget", "widget"]) == ""


# ---- Registry ----------------------------------------------------------------------------------------------


def test_builtins_are_imported_only_when_asked_for(site: Path) -> None:
    mod = _module(site, "VALUE = object()\n")
    registry: Registry[object] = Registry("thing", builtins={"heavy": f"{mod}:VALUE"})
    assert registry.names() == ["heavy"] and "heavy" in registry
    assert registry.source("heavy") == "built-in"
    assert mod not in sys.modules  # listing and asking where it comes from imported nothing
    value = registry.get("heavy")
    assert value is sys.modules[mod].VALUE
    assert registry.get("heavy") is value


def test_run_time_registration_shadows_and_unregister_reveals(site: Path) -> None:
    mod = _module(site, "VALUE = 'built-in'\n")
    registry: Registry[str] = Registry("thing", builtins={"a": f"{mod}:VALUE"})
    assert registry.register("a", "mine") == "mine"
    assert registry.get("a") == "mine" and registry.source("a") == "registered"
    registry.register("b", "other")
    assert registry.names() == ["a", "b"] and registry.registered() == {"a": "mine", "b": "other"}
    registry.unregister("a")
    assert registry.get("a") == "built-in"
    with registry.isolated():
        registry.register("c", "scoped")
        registry.unregister("b")
        assert registry.names() == ["a", "c"]
    assert registry.names() == ["a", "b"]
    with pytest.raises(PromptkitError, match="a thing name must be a non-empty string"):
        registry.register("", "x")


def test_names_are_normalized_everywhere() -> None:
    registry: Registry[str] = Registry("verifier", normalize=lambda n: n.strip().lower().replace("_", "-"))
    registry.register("Python_Compile", "x")
    assert registry.names() == ["python-compile"]
    assert registry.get(" python_compile") == "x" and "PYTHON-COMPILE" in registry


def test_unknown_name_suggests_the_closest_and_lists_the_known(site: Path) -> None:
    mod = _module(site, "A = 1\n")
    registry: Registry[int] = Registry("widget", builtins={"gadget": f"{mod}:A"}, error=ConfigError)
    registry.register("widget", 2)
    with pytest.raises(ConfigError) as info:
        registry.get("widgit", location="plan.yaml:4")
    assert (
        str(info.value)
        == "plan.yaml:4: unknown widget 'widgit' (did you mean 'widget'?); known: gadget, widget"
    )
    assert registry.find("widgit") is None and registry.find(3) is None
    with pytest.raises(ConfigError, match=r"unknown widget 'zzzz'; known: gadget, widget$"):
        registry.get("zzzz")
    empty: Registry[int] = Registry("widget")
    with pytest.raises(PromptkitError, match="known: none"):
        empty.get("a")


def test_entry_points_of_an_installed_distribution(site: Path) -> None:
    group = _group()
    mod = _module(site, "class Plugin:\n    pass\nOTHER = 'other'\n")
    builtin = _module(site, "VALUE = 'built-in'\n")
    info = _distribution(
        site, "fake-plugin", {group: {"plug": f"{mod}:Plugin", "shadow": f"{mod}:OTHER [extra]"}}
    )
    registry: Registry[object] = Registry("thing", group=group, builtins={"shadow": f"{builtin}:VALUE"})
    assert registry.names() == ["plug", "shadow"]
    assert mod not in sys.modules  # entry points are read, not loaded, until asked for
    assert registry.source("plug") == "entry point"
    assert registry.get("plug").__name__ == "Plugin"  # type: ignore[attr-defined]
    assert registry.get("shadow") == "other"  # an installed plugin takes a built-in's name
    assert builtin not in sys.modules
    registry.register("plug", "mine")
    assert registry.get("plug") == "mine"  # and run-time registration beats both
    registry.unregister("plug")

    # Read once: a distribution removed after the first read is still known until reload().
    (info / "entry_points.txt").unlink()
    (info / "METADATA").unlink()
    info.rmdir()
    assert "plug" in registry.names()
    assert registry.reload() == ["shadow"]
    assert registry.get("shadow") == "built-in"


def test_an_entry_point_that_cannot_be_imported_names_its_distribution(site: Path) -> None:
    group = _group()
    _distribution(site, "broken-plugin", {group: {"bad": "no_such_module_xyz:Thing"}})
    registry: Registry[object] = Registry(
        "backend scheme", group=group, error=ConfigError, unavailable=BackendUnavailable
    )
    assert registry.names() == ["bad"]
    with pytest.raises(BackendUnavailable) as info:
        registry.get("bad")
    assert info.value.location == f"entry point 'bad' in '{group}' of broken-plugin"
    assert "cannot import backend scheme 'bad' from 'no_such_module_xyz:Thing'" in info.value.message


def test_a_broken_metadata_scan_leaves_the_builtins(monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
    import importlib.metadata as md

    def explode(**kwargs: object) -> list[object]:
        raise ValueError("a corrupt distribution")

    mod = _module(site, "A = 1\n")
    monkeypatch.setattr(md, "entry_points", explode)
    registry: Registry[int] = Registry("thing", group=_group(), builtins={"a": f"{mod}:A"})
    assert registry.names() == ["a"] and registry.get("a") == 1


# ---- the kinds that use it -------------------------------------------------------------------------------


def test_a_backend_from_an_installed_distribution(site: Path) -> None:
    from promptkit.backends import _registry, resolve_model
    from promptkit.config import Config

    mod = _module(
        site,
        """
        from promptkit.backends import ScriptedBackend

        def make(target, **options):
            return ScriptedBackend(default=f"echo {target}", name="fromdist")
        """,
    )
    info = _distribution(site, "promptkit-fromdist", {"promptkit.backends": {"fromdist": f"{mod}:make"}})
    with _registry.BACKENDS.isolated():
        assert "fromdist" in _registry.known_schemes()
        backend = resolve_model("fromdist:hello", Config(), cache=False).backend
        assert backend.name == "fromdist"
    for path in info.iterdir():
        path.unlink()
    info.rmdir()
    assert "fromdist" not in _registry.known_schemes()  # uninstalled: read afresh after the block


def test_a_custom_scorer_and_a_verifier_from_an_installed_distribution(site: Path) -> None:
    from promptkit.evals._scorers import SCORERS, _FieldError, build_scorer
    from promptkit.execution import verifier_from_spec
    from promptkit.execution._verifiers import VERIFIERS

    mod = _module(
        site,
        """
        def short(item, output, parsed):
            return len(output.text) < 5

        class Check:
            def __init__(self, strict=False):
                self.strict = strict

            async def __call__(self, workspace):
                raise NotImplementedError
        """,
    )
    _distribution(
        site,
        "promptkit-extras",
        {
            "promptkit.scorers": {"short": f"{mod}:short", "gone": "no_such_module_xyz:f"},
            "promptkit.verifiers": {"strict_check": f"{mod}:Check"},
        },
    )
    with SCORERS.isolated(), VERIFIERS.isolated():
        assert build_scorer({"type": "custom", "name": "short"}).name == "short"
        with pytest.raises(_FieldError) as info:
            build_scorer({"type": "custom", "name": "gone"})
        assert info.value.field == "name" and "no_such_module_xyz:f" in info.value.message
        with pytest.raises(_FieldError, match=r"no scorer registered as 'shrot' \(did you mean 'short'\?\)"):
            build_scorer({"type": "custom", "name": "shrot"})
        built = verifier_from_spec({"strict-check": {"strict": True}})
        assert type(built).__name__ == "Check" and built.strict  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("get_registry", "expected"),
    [
        (lambda: __import__("promptkit.backends._registry", fromlist=["BACKENDS"]).BACKENDS, "local"),
        (lambda: __import__("promptkit.evals._scorers", fromlist=["SCORER_TYPES"]).SCORER_TYPES, "judge"),
        (lambda: __import__("promptkit.execution._verifiers", fromlist=["VERIFIERS"]).VERIFIERS, "pytest"),
        (
            lambda: __import__("promptkit.prompts._registry", fromlist=["TEMPLATE_FOLDERS"]).TEMPLATE_FOLDERS,
            "promptkit",
        ),
    ],
)
def test_every_builtin_reference_resolves(
    get_registry: Callable[[], Registry[object]], expected: str
) -> None:
    registry = get_registry()
    assert expected in registry.builtins
    for name, ref in registry.builtins.items():
        assert split_ref(ref) is not None, (name, ref)
        if name in ("local", "litellm", "openai"):
            continue  # importing these needs their optional SDKs; test_registry covers them
        assert import_ref(ref) is not None, (name, ref)


def test_builtins_are_declared_once_in_code_not_again_as_entry_points() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = project.get("entry-points", {})
    own = {group: points for group, points in groups.items() if group.startswith("promptkit.")}
    assert not any(points for points in own.values()), f"built-ins are registered in code: {own}"
