"""Visualize page under AppTest: every method family, every target mode, several models and images, bad input.

AppTest cannot drive a file uploader or click a chart: uploads are tested through the pure decoding helper,
images "sent from another page" through session state, and chart clicks through the callback's state change.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from apptest_helpers import app, count_elements, ok
from PIL import Image
from streamlit.testing.v1 import AppTest

from xai_core.data.inputs import decode_uploads, from_records, make_record

TIMEOUT = 300
PAGE = "pages/visualize.py"


def _images(at: AppTest) -> int:
    return count_elements(at, "image")


@pytest.fixture(scope="module")
def vis() -> AppTest:
    return ok(app(PAGE, default_timeout=TIMEOUT).run())


@pytest.mark.parametrize(("method_id", "kind"), [("lrp.alpha_1_beta_0", "non-negative"),
                                                 ("lrp.alpha_2_beta_1", "signed")])
def test_method_card_states_the_map_type_it_draws(method_id, kind):
    """Issue: "Map: signed — red for, blue against" right under "Never shows evidence against the class". The card
    and the colour map follow the method's real map type."""
    from xai_core.viz.render import DIVERGING_CMAPS, SEQUENTIAL_CMAPS

    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.family"] = "LRP"
    at.session_state["visualize.method.lrp"] = method_id
    ok(at.run())
    cards = [c.value for c in at.caption if "Map:" in c.value]
    assert len(cards) == 1 and f"Map: {kind}" in cards[0]
    cmaps = next(s for s in at.sidebar.selectbox if s.label == "Colour map").options
    assert tuple(cmaps) == (SEQUENTIAL_CMAPS if kind == "non-negative" else DIVERGING_CMAPS)


def test_default_run_shows_image_heatmap_overlay(vis):
    assert vis.title[0].value == "Visualize"
    assert any("Why? LRP-ε" in s.value for s in vis.subheader)
    # original, heatmap and overlay for the one default image (+ the gallery thumbnail)
    assert _images(vis) >= 4


@pytest.mark.parametrize("family, method", [
    ("Gradient", "integrated_gradients"), ("LRP", "lrp.sequential_preset_a"), ("Deep Taylor", "deep_taylor"),
    ("CAM", "gradcam"), ("Perturbation", "occlusion"), ("Reference", "input"),
])
def test_one_method_of_each_family(vis, family, method):
    vis.session_state["visualize.family"] = family
    vis.session_state[f"visualize.method.{family.lower().replace(' ', '-')}"] = method
    ok(vis.run())
    label = {"integrated_gradients": "Integrated Gradients", "lrp.sequential_preset_a": "LRP preset A",
             "deep_taylor": "Deep Taylor", "gradcam": "Grad-CAM", "occlusion": "Occlusion", "input": "Input"}[method]
    assert any(f"Why? {label} for" in s.value for s in vis.subheader), [s.value for s in vis.subheader]


def test_target_modes(vis):
    vis.session_state["visualize.family"] = "Gradient"
    vis.session_state["visualize.method.gradient"] = "gradient"
    vis.session_state["visualize.target"] = "class"
    vis.session_state["visualize.class"] = 3
    ok(vis.run())
    assert any("the chosen class" in s.value for s in vis.subheader)
    vis.session_state["visualize.target"] = "neuron"
    ok(vis.run())
    assert any("neuron 0 of layer" in s.value for s in vis.subheader)
    before = _images(vis)
    vis.session_state["visualize.target"] = "top_neurons"
    vis.session_state["visualize.k"] = 4
    ok(vis.run())
    assert any("4 most activated neurons" in s.value for s in vis.subheader)
    assert _images(vis) >= before + 6, "four neurons → four heatmaps and four overlays"
    vis.session_state["visualize.target"] = "predicted"
    ok(vis.run())


def _report_button(at: AppTest):
    return next(b for b in at.get("download_button") if b.proto.label == "Report (HTML)")


def test_report_download_is_offered_and_refused_over_its_limit(vis):
    """The report's button is on the page; a request over the report's limit disables it and says why."""
    from xai_core.report import MAX_MAPS

    assert not _report_button(vis).proto.disabled
    vis.session_state["visualize.family"] = "Gradient"
    vis.session_state["visualize.method.gradient"] = "gradient"
    vis.session_state["visualize.gallery"] = ["digits/test/0078", "digits/test/0202", "digits/test/0021",
                                              "digits/test/0042"]
    vis.session_state["visualize.target"] = "top_neurons"
    vis.session_state["visualize.k"] = 16
    ok(vis.run())
    assert _report_button(vis).proto.disabled
    assert any(f"at most {MAX_MAPS} maps" in c.value and "shows 64" in c.value for c in vis.caption)
    vis.session_state["visualize.target"] = "predicted"
    vis.session_state["visualize.gallery"] = ["digits/test/0078"]
    ok(vis.run())
    assert not _report_button(vis).proto.disabled


def test_chart_click_callback_sets_the_class():
    """The chart's on_select callback turns a clicked bar into a class target (run inside a tiny script, since
    the callback reads st.session_state)."""
    at = AppTest.from_string(
        "import streamlit as st\n"
        "from ui.widgets.method import on_prediction_click\n"
        "st.session_state['p.chart'] = {'selection': {'pred_select': [{'class_index': 7}]}}\n"
        "on_prediction_click('p', 'p.chart')\n"
        "st.write(st.session_state['p.target'], st.session_state['p.class'])\n", default_timeout=60).run()
    assert not at.exception
    assert at.session_state["p.target"] == "class" and at.session_state["p.class"] == 7


def test_several_models_and_several_images():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.models"] = ["demo:digits_cnn", "demo:digits_resnet"]
    at.session_state["visualize.gallery"] = ["digits/test/0078"]
    at.session_state["shared.images"] = [make_record(np.full((40, 40, 3), 200, np.uint8), "gray square"),
                                         make_record(np.eye(32, dtype=np.uint8) * 255, "diagonal")]
    ok(at.run())
    assert any("Use the 2 images sent" in t.label for t in at.toggle)
    # 3 images × 2 models × (heatmap + overlay) + 3 originals, at least
    assert _images(at) >= 3 * 2 * 2 + 3
    assert any("With several models" in c.value for c in at.caption)


def test_bad_sent_records_are_reported_and_the_rest_still_works():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["shared.images"] = [{"name": "broken", "pixels": "not an array"},
                                         make_record(np.full((40, 40, 3), 90, np.uint8), "fine")]
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "broken" in at.error[0].value
    assert any("Why?" in s.value for s in at.subheader)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_upload_helper_keeps_good_files_and_names_bad_ones():
    good = _png(Image.new("RGB", (50, 40), "red"))
    files = [("a.png", good), ("broken.png", good[:50]), ("tiny.png", _png(Image.new("L", (1, 1)))),
             ("notes.txt", b"hello"), ("copy.png", good)]
    images, errors = decode_uploads(files)
    assert [i.name for i in images] == ["a.png"], "identical contents only once"
    assert len(errors) == 3
    assert any("broken.png" in e for e in errors) and any("tiny.png" in e for e in errors)
    assert any("notes.txt" in e for e in errors)


def test_sent_records_validation():
    ok, errors = from_records([make_record(np.zeros((10, 10), np.uint8), "gray")])
    assert len(ok) == 1 and ok[0].pixels.shape == (10, 10, 3) and not errors
    _, errors = from_records({"not": "a list"})
    assert errors


def test_unavailable_imagenet_weights_are_a_clear_error_and_the_demo_still_works(monkeypatch):
    """Offline (simulated, so the test never touches the network): the keras.applications model is refused
    with a message naming the problem; the demo model beside it is still explained."""
    from xai_core.errors import WeightsUnavailableError
    from xai_core.models import applications

    def offline(name, *args, **kwargs):
        raise WeightsUnavailableError(f"ImageNet weights for {name} could not be downloaded (no network?).")

    monkeypatch.setattr(applications, "ensure_weights", offline)
    monkeypatch.setattr(applications, "weights_cached", lambda name: False)
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.models"] = ["demo:digits_cnn", "app:ResNet50"]
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "ImageNet weights for ResNet50 could not be downloaded" in at.error[0].value
    assert any("Why?" in s.value for s in at.subheader)


def test_router_opens_visualize():
    at = app("streamlit_app.py", default_timeout=TIMEOUT).run()
    ok(at.switch_page("pages/visualize.py").run())
    assert at.title[0].value == "Visualize"
    assert any("Why?" in s.value for s in at.subheader)


def test_uploads_through_the_file_uploader_bad_file_named_good_ones_explained():
    good = _png(Image.new("RGBA", (60, 40), (200, 30, 30, 128)))
    at = app(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="visualize.uploads").set_value(
        [("good.png", good, "image/png"), ("truncated.png", good[:80], "image/png")]).run()
    assert not at.exception
    assert len(at.error) == 1 and "truncated.png" in at.error[0].value
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("good.png (input 32×32)") for c in captions), captions


def test_a_file_that_is_not_a_model_is_a_clear_error_and_the_demo_keeps_working():
    at = app(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="visualize.model_file").set_value(("model.h5", b"this is not a model", "application/x-hdf5"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "model.h5" in at.error[0].value and "not a model file" in at.error[0].value
    assert any("Why?" in s.value for s in at.subheader), "the demo model is still explained"


def test_display_settings_never_recompute_maps(monkeypatch):
    """Alpha, colour map and normalisation only re-render: the explanation function is not called again."""
    import ui.cache as common

    calls = []
    real = common.explain
    monkeypatch.setattr(common, "explain", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["shared.images"] = [make_record(np.arange(48 * 48 * 3).reshape(48, 48, 3) % 251, "unique")]
    ok(at.run())
    first = len(calls)
    assert first >= 1, "the new image was explained once"
    at.session_state["visualize.alpha"] = 0.3
    at.session_state["visualize.cmap.signed"] = "seismic"
    at.session_state["visualize.norm"] = "percentile"
    at.session_state["visualize.shared"] = True
    at.session_state["visualize.view"] = "overlay"
    ok(at.run())
    assert len(calls) == first, f"display changes recomputed maps: {calls}"


def test_a_new_methods_first_map_is_computed_once(monkeypatch):
    """A method new for a model is built (once), then each image's map is computed once: no map is computed to build
    the method and thrown away (it was, through the page's path, before the build step became the engine's)."""
    from dataclasses import replace

    import ui.cache as common
    import ui.explanations as explanations
    from xai_core.methods import REGISTRY

    method = "lrp.alpha_1_beta_0_IB"
    runs, builds = [], []
    spec = REGISTRY[method]
    counted = replace(spec, run=lambda *a, **kw: runs.append(len(a[1])) or spec.run(*a, **kw))
    monkeypatch.setitem(REGISTRY, method, counted)
    real_build = explanations.ensure_built
    monkeypatch.setattr(explanations, "ensure_built", lambda *a, **kw: builds.append(a[1]) or real_build(*a, **kw))
    common._explanation.clear()
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.models"] = ["demo:shapes_resnet"]
    at.session_state["visualize.gallery"] = ["shapes/test/00010", "shapes/test/00012"]
    at.session_state["visualize.family"] = "LRP"
    at.session_state["visualize.method.lrp"] = method
    ok(at.run())
    assert runs == [1, 1], f"maps computed (images per call): {runs}"
    assert builds in ([], [method]), builds  # [] when another test built it on this model


def test_reset_restores_defaults():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.family"] = "CAM"
    at.session_state["visualize.alpha"] = 0.2
    ok(at.run())
    at.button[0].click().run()  # "Reset page" is the first button
    ok(at.run())
    assert at.session_state["visualize.family"] == "LRP" and at.session_state["visualize.alpha"] == 0.6


def _strips() -> list[dict]:
    """Images with aspect ratios 100:1, 1000:1 and 1:1000 (each at least 8 px on its short side)."""
    rng = np.random.default_rng(0)
    return [make_record(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"{w}x{h}")
            for w, h in ((800, 8), (8000, 8), (8, 8000))]


@pytest.mark.parametrize("page", [PAGE, "pages/compare.py"])
def test_extreme_aspect_ratios_explain_without_an_exception(page):
    """Issue: a 4000×8 upload showed an exception box (0-px thumbnail) and took the good images down with it."""
    at = app(page, default_timeout=TIMEOUT)
    at.session_state["shared.images"] = _strips()
    ok(at.run())
    assert any(t.label.startswith("Use the 3 images") for t in at.toggle)
    if page == PAGE:
        assert any("Why?" in s.value for s in at.subheader)
    captions = [c for img in at.image for c in img.captions]
    assert sum(any(name in c for c in captions) for name in ("800x8", "8000x8", "8x8000")) == 3


def test_extreme_uploads_are_decoded_to_usable_sizes():
    from xai_core.data.images import MIN_SIDE

    files = [(f"{w}x{h}.png", _png(Image.new("RGB", (w, h), "gray"))) for w, h in ((4000, 8), (1000, 9), (9, 1000))]
    items, errors = decode_uploads(files, max_side=1024)
    assert not errors and len(items) == 3
    assert all(min(i.pixels.shape[:2]) >= MIN_SIDE for i in items)


def test_an_uploaded_keras3_model_shows_what_reading_it_did():
    """A model saved by Keras 3 (the zoo's CNN, uploaded as from the file uploader): its summary under Models says
    that the file was converted, and it is explained."""
    import keras3_zoo

    from ui.uploads import register_upload

    path = keras3_zoo.build() / "keras3" / "cnn_bn.keras"
    key = register_upload(path.read_bytes(), "my_keras3_cnn.keras")
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.models"] = [key]
    ok(at.run())
    lines = [c.value for c in at.caption if "my_keras3_cnn" in c.value]
    assert len(lines) == 1 and "Keras 3.15.1 file, converted: 10 layers, 1,523 weights" in lines[0], lines
    assert any("Why?" in s.value for s in at.subheader)
