"""The lock: what is installed is what ``uv.lock`` pins, and ``requirements.txt`` (its export for pip) agrees with it.

Community Cloud resolves anything left open afresh on every deploy (that is how a Starlette release broke deployed
Streamlit apps, streamlit/streamlit#16341), so every distribution is pinned, for Python 3.11, 3.12 and 3.13.
``make lock`` regenerates both files from the direct dependencies in ``pyproject.toml``.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_packages() -> dict[tuple[str, str], dict]:
    return {(_norm(p["name"]), p["version"]): p for p in LOCK["package"]}


def _project() -> dict:
    (project,) = [p for p in LOCK["package"] if p.get("source", {}).get("virtual") == "."]
    return project


def _reachable(roots: list[dict]) -> set[tuple[str, str]]:
    """Every ``(name, version)`` the lock reaches from dependency entries ``roots`` (all Python versions)."""
    packages = _locked_packages()
    by_name: dict[str, list[str]] = {}
    for name, version in packages:
        by_name.setdefault(name, []).append(version)
    seen: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        dep = todo.pop()
        name = _norm(dep["name"])
        versions = [dep["version"]] if "version" in dep else by_name[name]
        for version in versions:
            if (name, version) in seen:
                continue
            seen.add((name, version))
            todo.extend(packages[(name, version)].get("dependencies", []))
    return seen


def _requirements_txt() -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def _pinned(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"requirements.txt: {req} is not pinned exactly"
    return spec.version


def _locked_here(roots: list[dict]) -> dict[str, str]:
    """``{name: version}`` the lock installs on this Python and platform from dependency entries ``roots``."""
    packages = _locked_packages()
    by_name: dict[str, list[str]] = {}
    for name, version in packages:
        by_name.setdefault(name, []).append(version)
    here: dict[str, str] = {}
    todo = list(roots)
    while todo:
        dep = todo.pop()
        if "marker" in dep and not Marker(dep["marker"]).evaluate():
            continue
        name = _norm(dep["name"])
        (version,) = [dep["version"]] if "version" in dep else by_name[name]
        package = packages[(name, version)]
        todo.extend(extra for key in dep.get("extra", []) for extra in package["optional-dependencies"][key])
        if name in here:
            continue
        here[name] = version
        todo.extend(package.get("dependencies", []))
    return here


def test_requirements_txt_is_the_export_of_the_lock():
    exported = {(_norm(r.name), _pinned(r)) for r in _requirements_txt()}
    runtime = _reachable(_project()["dependencies"])
    assert exported == runtime, (f"only in requirements.txt: {sorted(exported - runtime)}; only in uv.lock: "
                                 f"{sorted(runtime - exported)} (run make lock)")


def test_the_lock_keeps_every_direct_dependency():
    locked = _reachable(_project()["dependencies"])
    for spec in PROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        versions = [v for n, v in locked if n == _norm(req.name)]
        assert versions and all(req.specifier.contains(v) for v in versions), f"{req}: locked {versions}"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_every_runtime_distribution_is_installed_at_its_locked_version():
    locked = _locked_here(_project()["dependencies"])
    differ = {name: (_installed(name), version) for name, version in locked.items() if _installed(name) != version}
    assert not differ, f"installed ≠ locked (installed, locked): {differ} (make run / make test install the lock)"


def test_dev_tools_are_installed_at_their_locked_versions():
    locked = _locked_here(_project()["dev-dependencies"]["dev"])
    differ = {name: (_installed(name), version) for name, version in locked.items() if _installed(name) != version}
    assert not differ, f"installed ≠ locked (installed, locked): {differ}"
