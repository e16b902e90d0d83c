"""Real-browser test harness: a live `streamlit run` server and headless Debian Chromium via Playwright.

Every test in this folder is marked ``browser`` (``pytest -m "not browser"`` leaves them out). Without
/usr/bin/chromium they are skipped, or fail when ``XAI_LENS_REQUIRE_BROWSER=1`` (CI sets it).
Playwright's own browser downloads are never used: ``playwright install`` needs a network we do not have.

Helpers for tests (``wait_for_app``, ``assert_no_exception``, ``screenshot``) are in browser_helpers.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .browser_helpers import REPO_ROOT, record_server_errors, screenshot

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1440, "height": 900}
SERVER_START_TIMEOUT_S = 90

_server_log: Path | None = None  # set by app_url, read by the failure report hook


def _tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- hooks


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed and _server_log is not None and item.path.resolve().is_relative_to(HERE):
        report.sections.append(("streamlit server log (tail)", _tail(_server_log)))


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def chromium_path() -> Path:
    """Debian's Chromium, or skip (fail under ``XAI_LENS_REQUIRE_BROWSER=1``) when it is missing."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) for browser tests"
        if os.environ.get("XAI_LENS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (XAI_LENS_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@contextmanager
def streamlit_server(log_path: Path) -> Iterator[str]:
    """Run ``streamlit run streamlit_app.py`` on a free port, logging to ``log_path``; yield its URL."""
    global _server_log
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    _server_log = log_path
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with _server_log.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {proc.returncode}:\n{_tail(_server_log)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{_tail(_server_log)}",
                    pytrace=False,
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory) -> Iterator[str]:
    """One server for the whole browser session."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


@pytest.fixture
def fresh_app_url(tmp_path) -> Iterator[str]:
    """A server of its own that no page has been opened on yet (for first-request behaviour)."""
    with streamlit_server(tmp_path / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh 1440×900 page; a failing test leaves ``artifacts/screenshots/FAILED-<test>.png``.

    HTTP 5xx answers from the local app server are recorded and reported by ``assert_no_exception``.
    """
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    record_server_errors(page, "http://127.0.0.1:")
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        with contextlib.suppress(Exception):  # a broken page must not hide the test's own failure
            screenshot(page, "FAILED-" + request.node.name.replace("/", "_"))
    context.close()
