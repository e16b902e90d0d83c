"""The HTML report in a real browser: download it from Visualize, Compare Models, Trust and Suggest's strategies,
then open the saved file in Chromium with networking off, and check that it requests nothing and draws every
chart."""

from __future__ import annotations

from pathlib import Path

from .browser_helpers import SCREENSHOT_DIR, assert_no_exception, open_tagged_circles, screenshot, wait_for_app
from .conftest import VIEWPORT

#: Vega-Lite's note on a faceted layer chart with independent scales (the predictions' bars and their labels): the
#: two layers do read the same data. Any other warning (e.g. a sort Vega-Lite drops) fails the test.
KNOWN_WARNING = "Detected faceted independent scales that union domain of the same fields from different source"


def download_report(page, tmp_path: Path, name: str) -> Path:
    """Click the page's "Report (HTML)" button and save what the browser downloads."""
    # with a help tooltip, Streamlit's download button holds two <button> elements; the first is the one shown
    button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="Report (HTML)").locator("button").first
    button.scroll_into_view_if_needed()
    assert button.is_enabled()
    with page.expect_download(timeout=120_000) as info:
        button.click()
    path = tmp_path / f"{name}.html"
    info.value.save_as(path)
    return path


def open_offline(browser, path: Path, name: str) -> dict:
    """Open a saved report with the network off (every request but the file itself is refused and recorded); wait
    for every chart to be drawn; full-page screenshot ``report-<name>.png``. Returns what was seen."""
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    requested: list[str] = []

    def refuse(route) -> None:
        if route.request.url.startswith("file://") and route.request.url.endswith(path.name):
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}")
            if m.type == "error" or (m.type == "warning" and KNOWN_WARNING not in m.text) else None)
    page.goto(path.as_uri())
    charts = page.locator("div.vega").count()
    page.wait_for_function(f"document.querySelectorAll('div.vega.live svg.marks').length === {charts}",
                           timeout=30_000)
    seen = {"charts": charts, "requested": requested, "errors": errors,
            "images": page.locator("img").count(),
            "broken": page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length"),
            "marks": page.evaluate("[...document.querySelectorAll('div.vega.live svg.marks')]"
                                   ".map(s => s.querySelectorAll('path, rect, line, text, symbol').length)"),
            "title": page.title()}
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"report-{name}.png"), full_page=True)
    context.close()
    return seen


def check(seen: dict, min_charts: int) -> None:
    assert seen["requested"] == [], f"the report asked the network for {seen['requested'][:5]}"
    assert seen["errors"] == [], seen["errors"]
    assert seen["charts"] >= min_charts
    assert all(n > 5 for n in seen["marks"]), f"a chart drew (almost) nothing: {seen['marks']}"
    assert seen["broken"] == 0 and seen["images"] > seen["charts"]


def test_visualize_report_opens_offline_with_every_chart(page, browser, app_url, tmp_path):
    page.goto(f"{app_url}/visualize")
    page.get_by_text("Why? ", exact=False).first.wait_for(state="visible", timeout=240_000)
    wait_for_app(page, timeout_s=240)
    assert_no_exception(page)
    path = download_report(page, tmp_path, "visualize")
    screenshot(page, "visualize-report-button")
    seen = open_offline(browser, path, "visualize")
    check(seen, 1)
    assert "Visualize: LRP-ε on 1 image" in seen["title"]


def test_compare_report_opens_offline_with_every_chart(page, browser, app_url, tmp_path):
    page.goto(f"{app_url}/compare")
    page.get_by_role("heading", name="Agreement").wait_for(state="visible", timeout=240_000)
    wait_for_app(page, timeout_s=240)
    assert_no_exception(page)
    check(open_offline(browser, download_report(page, tmp_path, "compare"), "compare"), 2)


def test_trust_report_opens_offline_with_every_chart(page, browser, app_url, tmp_path):
    page.goto(f"{app_url}/trust")
    wait_for_app(page, timeout_s=240)
    page.get_by_role("button", name="Compute the leaderboard").click()
    wait_for_app(page, timeout_s=300)
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 2
    assert_no_exception(page)
    seen = open_offline(browser, download_report(page, tmp_path, "trust"), "trust")
    check(seen, 2)


def test_strategies_report_opens_offline_with_every_chart(page, browser, app_url, tmp_path):
    open_tagged_circles(page, app_url)
    assert_no_exception(page)
    path = download_report(page, tmp_path, "strategies")
    screenshot(page, "suggest-strategies-report-button")
    seen = open_offline(browser, path, "strategies")
    check(seen, 4)  # eigengap, cluster sizes, t-SNE, shortcut check
    assert "Suggest: strategies of 'circle'" in seen["title"]
