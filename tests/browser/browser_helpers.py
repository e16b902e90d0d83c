"""Helpers for the real-browser tests (Playwright sync API on a live Streamlit server).

Import them in a test module of this folder: ``from .browser_helpers import assert_no_exception, wait_for_app``.
(Not in conftest.py: ``from conftest import ...`` gets whichever conftest module pytest imported last.)
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"
FIRST_RUN_TIMEOUT_S = 120  # the first script run imports TensorFlow and may build models

_server_errors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # page -> ["500 http://..."]

_APP_IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-testid="stStatusWidget"]')
        && !document.querySelector('[data-testid="stSkeleton"]');
}"""

_APP_STATE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return 'no stApp element';
    const state = (name) => app.getAttribute('data-test-' + name + '-state');
    return state('connection') + ' / ' + state('script');
}"""


def wait_for_app(page, timeout_s: float = FIRST_RUN_TIMEOUT_S, quiet_ms: int = 1000) -> None:
    """Wait until Streamlit has finished running the script and stayed idle for ``quiet_ms``.

    Streamlit (1.60–1.67) publishes its state on the root element: ``[data-testid="stApp"]`` carries
    ``data-test-connection-state`` (CONNECTING → CONNECTED) and ``data-test-script-state``
    (initial → running → notRunning on every rerun), and the "Running…" ``stStatusWidget`` is attached only
    while a run is in progress. Call it after ``page.goto`` and after every interaction that reruns the
    script; a widget event may take a moment to start its rerun, hence the quiet window.
    """
    deadline = time.monotonic() + timeout_s
    idle_since: float | None = None
    while True:
        now = time.monotonic()
        if page.evaluate(_APP_IDLE_JS):
            idle_since = idle_since or now
            if now - idle_since >= quiet_ms / 1000:
                return
        else:
            idle_since = None
        if now > deadline:
            raise AssertionError(
                f"Streamlit app not idle after {timeout_s:.0f} s (state: {page.evaluate(_APP_STATE_JS)})"
            )
        page.wait_for_timeout(100)


def record_server_errors(page, origin: str) -> None:
    """Remember every HTTP 5xx answer from ``origin`` (the app) for :func:`assert_no_exception`.

    A broken media or static route (e.g. every ``st.image`` answering 500) shows no exception box.
    """
    errors = _server_errors.setdefault(page, [])

    def on_response(response) -> None:
        if response.status >= 500 and response.url.startswith(origin):
            errors.append(f"{response.status} {response.url}")

    page.on("response", on_response)


def assert_no_exception(page) -> None:
    """Fail on an uncaught-exception box (``st.error`` messages are allowed) or an HTTP 5xx from the app."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        texts = "\n---\n".join(t[:2000] for t in boxes.all_inner_texts())
        raise AssertionError(f"{boxes.count()} exception box(es) on the page:\n{texts}")
    errors = _server_errors.get(page, [])
    if errors:
        raise AssertionError("the app server answered with errors (see its log): " + ", ".join(errors[:10]))


def screenshot(page, name: str, full_page: bool = False) -> Path:
    """Save a PNG of the page to ``artifacts/screenshots/<name>.png`` and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_opened_in_visualize(page, button) -> None:
    """Click an "Explain" ``button`` and check that Visualize opened with the image sent from the other page."""
    button.click()
    wait_for_app(page)
    assert "/visualize" in page.url
    assert page.get_by_text("sent from another page", exact=False).count() >= 1
    assert_no_exception(page)


def choose(page, widget: str, label: str, option: str) -> None:
    """Pick ``option`` in the select box or multiselect (``widget``: its data-testid) labelled ``label``."""
    page.locator(f'[data-testid="{widget}"]').filter(has_text=label).locator("input").first.click()
    page.get_by_role("option", name=option, exact=False).first.click()
    page.keyboard.press("Escape")
    wait_for_app(page, timeout_s=300)


def open_tagged_circles(page, app_url: str) -> None:
    """Suggest's Strategies view on the bias demo (tagged shapes, their model), once its clusters are drawn."""
    page.goto(f"{app_url}/suggest")
    wait_for_app(page, timeout_s=240)
    page.get_by_role("radio", name="Strategies of one class (SpRAy)").click()
    wait_for_app(page, timeout_s=240)
    choose(page, "stSelectbox", "Demo set", "tagged shapes")
    choose(page, "stMultiSelect", "Models", "Tagged shapes CNN")
    choose(page, "stSelectbox", "Model", "Tagged shapes CNN")
    page.get_by_text("records which images carry the tag", exact=False).first.wait_for(timeout=300_000)
