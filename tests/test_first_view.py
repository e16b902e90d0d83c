"""Home's first view (xai_core/first_view.py): the stored numbers are the engine's, and reading them needs no
TensorFlow."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xai_core.first_view import (
    FIRST_VIEW_FILE,
    HOME_METHODS,
    compute_first_view,
    load_first_view,
    read_first_view,
    save_first_view,
)

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "stale first view: run `.venv/bin/python scripts/make_first_view.py`, commit the .npz it writes"


@pytest.fixture(scope="module")
def live():
    return compute_first_view()


def test_the_stored_view_is_the_engines_own(live):
    stored = load_first_view()
    assert stored is not None, "the model file changed since the first view was computed: " + REGENERATE
    for field in ("model_key", "model_sha256", "dataset", "n_images", "image_index", "image_id", "true_label",
                  "class_names", "target_class", "family_counts"):
        assert getattr(stored, field) == getattr(live, field), f"{field}: {REGENERATE}"
    np.testing.assert_array_equal(stored.image, live.image)
    np.testing.assert_allclose(stored.probs, live.probs, rtol=1e-5, atol=1e-7, err_msg=REGENERATE)
    assert [m.id for m in stored.methods] == list(HOME_METHODS)
    for s, m in zip(stored.methods, live.methods, strict=True):
        assert (s.label, s.summary, s.signed) == (m.label, m.summary, m.signed), REGENERATE
        scale = float(np.abs(m.map).max())
        assert scale > 0, f"{m.id}: an all-zero map would hide any difference"
        np.testing.assert_allclose(s.map, m.map, rtol=0, atol=1e-5 * scale, err_msg=f"{m.id}: {REGENERATE}")


def test_the_view_explains_the_predicted_class_of_the_default_model(live):
    from xai_core.methods import REGISTRY
    from xai_core.models.demo import default_demo_model_id

    assert live.model_key == f"demo:{default_demo_model_id()}"
    assert live.target_class == int(np.argmax(live.probs))
    assert sum(c for _, c in live.family_counts) == len(REGISTRY)


def test_a_view_of_another_model_file_is_refused(tmp_path):
    stored = read_first_view()
    path = tmp_path / "first_view.npz"
    save_first_view(dataclasses.replace(stored, model_sha256="0" * 64), path)
    assert load_first_view(path) is None, "Home must compute the view live when the model file changed"
    save_first_view(stored, path)
    assert load_first_view(path) is not None
    assert load_first_view(tmp_path / "missing.npz") is None


def test_a_view_covers_only_its_model_image_and_class():
    stored = read_first_view()
    assert stored.covers(stored.model_key, stored.image_index)
    assert not stored.covers(stored.model_key, stored.image_index + 1)
    assert not stored.covers("demo:shapes_cnn", stored.image_index)
    assert stored.shown(HOME_METHODS[0], stored.target_class) is not None
    assert stored.shown(HOME_METHODS[0], (stored.target_class + 1) % len(stored.class_names)) is None


def test_home_draws_the_first_view_without_tensorflow():
    """What Home imports before its first view is drawn (and the view itself) loads no TensorFlow: that is what
    lets a cold server show maps before the engine has started."""
    code = ("import sys; import streamlit; "
            "import ui.demo_data, ui.router, ui.widgets.typed, xai_core.data.images, xai_core.viz.prediction_charts, "
            "xai_core.viz.render; from xai_core.first_view import load_first_view; "
            "from xai_core.models.demo import demo_model_labels; "
            "assert load_first_view() is not None and demo_model_labels(); "
            "heavy = sorted(m for m in ('tensorflow', 'tf_keras', 'keras', 'innvestigate') if m in sys.modules); "
            "assert not heavy, heavy")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_home_imports_only_what_the_first_view_test_checks():
    """The list above must follow the page: every module Home imports before its first ``start_engine()`` is in it."""
    source = (ROOT / "pages" / "home.py").read_text(encoding="utf-8")
    head = source.split("def start_engine", 1)[0]
    imported = {line.split()[1] for line in head.splitlines() if line.startswith(("import ", "from "))}
    checked = {"__future__", "streamlit", "functools", "numpy", "ui.demo_data", "ui.router", "ui.widgets.typed",
               "xai_core.data.images", "xai_core.first_view", "xai_core.models.demo",
               "xai_core.viz.prediction_charts", "xai_core.viz.render"}
    assert imported <= checked, imported - checked
    assert FIRST_VIEW_FILE.exists()
