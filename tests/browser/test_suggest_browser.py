"""Suggest in a real browser: click a histogram bar and see the thumbnails of its images."""

from __future__ import annotations

from .browser_helpers import assert_no_exception, assert_opened_in_visualize, screenshot, wait_for_app


def click_tallest_bar(page, chart) -> None:
    """Click the tallest bar of an Altair bar chart (Streamlit renders Vega as SVG: one path per bar)."""
    chart.scroll_into_view_if_needed()
    bars = chart.locator("g.mark-rect path")
    heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]
    assert heights, "the histogram has no bars"
    bars.nth(max(range(len(heights)), key=heights.__getitem__)).click()


def test_click_histogram_bar_shows_thumbnails(page, app_url):
    page.goto(f"{app_url}/suggest")
    wait_for_app(page)
    assert_no_exception(page)
    page.get_by_role("radio", name="Activations of one model").click()
    wait_for_app(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.wait_for(state="visible")
    click_tallest_bar(page, chart)
    wait_for_app(page)
    page.get_by_text("in the selected bar", exact=False).first.wait_for()
    assert_no_exception(page)
    cards = page.locator('[data-testid="stImage"] img')
    assert cards.count() >= 1
    assert cards.first.evaluate("el => el.complete && el.naturalWidth > 0"), "thumbnail did not load"
    assert page.get_by_role("button", name="Explain").count() == cards.count()
    page.get_by_text("in the selected bar", exact=False).first.scroll_into_view_if_needed()
    screenshot(page, "suggest-histogram-click")

    assert_opened_in_visualize(page, page.get_by_role("button", name="Explain").first)  # with the image and model


def test_consensus_scatter_click_shows_the_image(page, app_url):
    page.goto(f"{app_url}/suggest")
    wait_for_app(page)  # opens on two demo digits models and their agreement
    page.get_by_text("How to read it:").first.wait_for()
    assert_no_exception(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    disagree = chart.locator('path[aria-roledescription="circle"][fill="#d62728"]')  # the red "disagree" points
    assert disagree.count() >= 1, "the two demo digits models disagree on a few test images"
    disagree.first.click()
    wait_for_app(page)
    page.get_by_text("Selected image").first.wait_for()
    assert page.get_by_role("button", name="Explain").count() == 1
    assert_no_exception(page)
    screenshot(page, "suggest-consensus-click")
