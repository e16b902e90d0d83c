"""The complete lock: every runtime distribution installed is pinned in requirements.txt, at the installed version.

Community Cloud resolves anything left open afresh on every deploy (that is how a Starlette release broke deployed
Streamlit apps, streamlit/streamlit#16341); ``scripts/lock.py`` regenerates the lock from ``requirements.in``.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-r"):
            continue
        assert "==" in line, f"{path.name}: '{line}' is not pinned exactly"
        name, version = line.split("==")
        pins[_norm(name)] = version.strip()
    return pins


def _direct(path: Path) -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-r")]


def _closure(names: list[str]) -> set[str]:
    """The installed distributions ``names`` need, transitively (markers evaluated, extras not followed)."""
    seen: set[str] = set()
    todo = [_norm(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.distribution(name).requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return seen


def test_every_installed_runtime_distribution_is_locked_at_its_version():
    lock = _pins(ROOT / "requirements.txt")
    needed = _closure([r.name for r in _direct(ROOT / "requirements.in")])
    missing = sorted(needed - set(lock))
    assert not missing, f"installed for the app but not in requirements.txt: {missing} (run scripts/lock.py)"
    differ = {n: (metadata.version(n), lock[n]) for n in needed if metadata.version(n) != lock[n]}
    assert not differ, f"installed ≠ locked (installed, locked): {differ}"


def test_the_lock_keeps_every_direct_pin():
    lock = _pins(ROOT / "requirements.txt")
    for req in _direct(ROOT / "requirements.in"):
        assert _norm(req.name) in lock, req.name
        assert req.specifier.contains(lock[_norm(req.name)]), f"{req}: locked {lock[_norm(req.name)]}"


def test_dev_tools_are_locked_too():
    dev = _pins(ROOT / "requirements-dev.txt")
    assert (ROOT / "requirements-dev.txt").read_text().count("-r requirements.txt") == 1
    needed = _closure([r.name for r in _direct(ROOT / "requirements-dev.in")]) - set(_pins(ROOT / "requirements.txt"))
    assert not sorted(needed - set(dev)), f"dev tools not locked: {sorted(needed - set(dev))}"
    assert all(metadata.version(n) == dev[n] for n in needed)
