"""xai_core is the app's pure-Python core: it must never import streamlit (STYLE.md).

Two checks: no ``import streamlit`` / ``from streamlit ...`` statement in any source file (read with ``ast``,
so comments and strings do not count), and importing every xai_core module in a fresh interpreter leaves
no ``streamlit`` module loaded (which also catches indirect imports through other libraries).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE = REPO_ROOT / "xai_core"


def _is_streamlit(module: str | None) -> bool:
    return module is not None and (module == "streamlit" or module.startswith("streamlit."))


def test_no_streamlit_import_statement_in_core_sources():
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no Python files under {CORE}"
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            if any(_is_streamlit(name) for name in names):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not offenders, "xai_core must not import streamlit: " + ", ".join(offenders)


_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import xai_core

names = ["xai_core"]
for info in pkgutil.walk_packages(xai_core.__path__, "xai_core."):
    importlib.import_module(info.name)
    names.append(info.name)
loaded = sorted(m for m in sys.modules if m == "streamlit" or m.startswith("streamlit."))
print(json.dumps({"imported": names, "streamlit": loaded}))
"""


def test_importing_every_core_module_does_not_load_streamlit():
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"importing xai_core modules failed:\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["imported"]) > 1, result
    assert not result["streamlit"], (
        f"importing xai_core loaded {result['streamlit'][:5]} (modules imported: {result['imported']})"
    )
