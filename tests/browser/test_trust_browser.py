"""Trust page in a real browser: compute the localisation leaderboard, click a method's bar, see its worst images;
and Visualize's "Can I trust this map?" panel turned on."""

from __future__ import annotations

from .browser_helpers import assert_no_exception, screenshot, wait_for_app


def test_leaderboard_bar_click_shows_that_methods_worst_images(page, app_url):
    page.goto(f"{app_url}/trust")
    wait_for_app(page, timeout_s=240)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Can I trust this map?").is_visible()
    page.get_by_role("button", name="Compute the leaderboard").click()
    wait_for_app(page, timeout_s=300)
    assert_no_exception(page)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() == 2
    inspect = page.locator('[data-testid="stSelectbox"]').filter(has_text="Worst images of").locator("input")
    assert inspect.input_value() != "Random"
    mass = charts.nth(1)
    mass.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "trust-leaderboard")
    bar = mass.locator('g.mark-rect path[aria-label*="Random"]').first
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_for_app(page)
    assert_no_exception(page)
    assert inspect.input_value() == "Random"
    thumbs = page.locator('[data-testid="stImage"]')
    assert thumbs.count() >= 6
    page.get_by_role("button", name="Open these 6 images in Visualize").scroll_into_view_if_needed()
    screenshot(page, "trust-worst-images")


def test_visualize_panel(page, app_url):
    page.goto(f"{app_url}/visualize")
    wait_for_app(page, timeout_s=240)
    # On a cold server the first maps (analyzer builds) may still be drawing when the app first looks idle, and a
    # click during that run can be lost: wait for the maps, then for each step's effect rather than for idleness.
    page.get_by_text("Why? ", exact=False).first.wait_for(state="visible", timeout=240_000)
    wait_for_app(page, timeout_s=240)
    page.get_by_text("Can I trust this map?").click()
    toggle = page.locator('[data-testid="stCheckbox"]').filter(has_text="Check these maps").locator("input")
    toggle.wait_for(state="attached", timeout=60_000)
    for _ in range(3):
        if toggle.is_checked():
            break
        page.get_by_text("Check these maps").click()
        wait_for_app(page, timeout_s=240)
    verdict = page.get_by_text("beats a random order on both curves", exact=False).first
    verdict.wait_for(state="visible", timeout=240_000)
    assert_no_exception(page)
    assert verdict.is_visible()
    page.locator('[data-testid="stVegaLiteChart"]').last.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "visualize-trust-panel")
