"""The memory budget (xai_core.models.memory, and ui.cache, which only delegates to it)."""

from __future__ import annotations

import pytest
from apptest_helpers import ok
from streamlit.testing.v1 import AppTest

from xai_core.models.memory import Ledger, MemoryBudgetError, budget_bytes, load_cost, rss_bytes

MB = 1024**2


def _ledger(budget_mb: float, baseline_mb: float = 100) -> Ledger:
    return Ledger(int(budget_mb * MB), rss=lambda: 0, baseline=int(baseline_mb * MB))


def test_least_recently_used_models_are_unloaded_first_never_the_one_asked_for():
    ledger = _ledger(1000)
    for key in ("a", "b", "c"):
        ledger.charge(key, 250 * MB)  # 100 + 750 in use
    ledger.touch("a")  # order now b, c, a
    assert ledger.plan("d", 100 * MB) == []  # 950 fits
    assert ledger.plan("d", 200 * MB) == ["b"]
    assert ledger.plan("d", 500 * MB) == ["b", "c"]
    assert ledger.plan("a", 600 * MB) == ["b", "c"], "a model's own memory is never freed for itself"
    assert ledger.plan("a", 2000 * MB) == ["b", "c"], "a loaded model's explanation is never refused"


def test_models_a_running_page_uses_are_not_unloaded():
    """Compare Models with two models under a tight budget unloaded each to load the other, over and over."""
    ledger = _ledger(1000)
    for key in ("a", "b", "c"):
        ledger.charge(key, 250 * MB)
    assert ledger.plan("d", 500 * MB, protect=frozenset({"a"})) == ["b", "c"]
    assert ledger.plan("d", 500 * MB, protect=frozenset({"a", "b", "c"})) == [], "over budget rather than thrash"


def test_a_model_that_alone_exceeds_the_budget_is_refused_with_a_reason():
    ledger = _ledger(1000)
    ledger.charge("small", 100 * MB)
    with pytest.raises(MemoryBudgetError, match="more than this server's budget"):
        ledger.plan("huge", 950 * MB, "Loading VGG16")
    assert ledger.entries == {"small": 100 * MB}, "refusing unloads nothing"


def test_real_rss_corrects_a_low_estimate():
    ledger = Ledger(1000 * MB, rss=lambda: 900 * MB, baseline=100 * MB)
    ledger.charge("a", 10 * MB)  # estimated 110 MB in use, really 900 MB
    assert ledger.in_use() == 900 * MB
    assert ledger.plan("b", 200 * MB) == ["a"]


def test_budget_from_the_environment():
    assert budget_bytes({}) == int(2.2 * 1024**3)
    assert budget_bytes({"XAI_LENS_MEMORY_BUDGET_MB": "1500"}) == 1500 * MB
    assert budget_bytes({"XAI_LENS_MEMORY_BUDGET_MB": "0"}) == 0  # no budget
    assert _ledger(0).plan("x", 10**12) == []
    assert rss_bytes() > 50 * MB  # this process, read from /proc


def _budget_script() -> None:
    import streamlit as st

    from ui import cache
    from xai_core.models.memory import load_cost

    if "ran" not in st.session_state:  # a fresh server-wide ledger: room for two demo models, by estimate
        cache.memory_ledger.clear()
        cache._loaded.clear()
        for model_id in ("digits_cnn", "digits_resnet", "shapes_cnn"):
            cache.demo_model.clear(model_id)
        ledger = cache.memory_ledger()
        ledger.rss, ledger.baseline = (lambda: 0), 0
        ledger.budget = int(2.5 * load_cost(4 * 1024**2))
        st.session_state.ran = True
    first = cache.get_model("demo:digits_cnn")
    cache.get_model("demo:digits_resnet")
    cache.get_model("demo:shapes_cnn")  # the third does not fit: the least recently used one goes
    st.session_state.closed = first.session._closed
    st.session_state.loaded = sorted(cache._loaded())


@pytest.fixture
def fresh_ledger():
    from ui import cache

    yield
    cache.memory_ledger.clear()  # the next model load starts a ledger with the test session's budget (off)
    cache._loaded.clear()


def test_the_cache_unloads_the_least_recently_used_model_and_says_so(fresh_ledger):
    at = ok(AppTest.from_function(_budget_script, default_timeout=300).run())
    assert at.session_state.loaded == ["demo:digits_resnet", "demo:shapes_cnn"]
    assert at.session_state.closed, "the unloaded model's session is closed, so its memory comes back"
    assert any("Unloaded 1 model(s)" in i.value and "digits_cnn" in i.value for i in at.info)
    assert load_cost(0) > 0
