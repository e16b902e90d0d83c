"""Smoke test: the app starts in a real browser and shows its home page without an exception."""

from .browser_helpers import assert_no_exception, screenshot, wait_for_app


def test_home_page_renders(page, app_url):
    page.goto(app_url)
    wait_for_app(page)

    assert_no_exception(page)
    assert page.get_by_role("heading", name="XAI Lens").first.is_visible()
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.is_visible(), "sidebar navigation is not rendered"
    assert nav.locator('[data-testid="stSidebarNavLink"]').count() >= 2
    screenshot(page, "smoke-home")


def test_deep_link_goes_through_router(page, fresh_app_url):
    """First request to a fresh server is a deep link: Streamlit's legacy pages/ mode must not take over
    (it would list every file in pages/, e.g. "common", and skip the router's page config)."""
    page.goto(f"{fresh_app_url}/methods")
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Explanation methods").first.is_visible()
    texts = page.locator('[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"]').all_inner_texts()
    links = [t.strip().splitlines()[-1] for t in texts]  # drop the icon ligature line
    assert "Home" in links and "Methods" in links, links
    assert not any(name in " ".join(links).lower() for name in ("common", "router", "streamlit app")), links
    screenshot(page, "deep-link-methods")
