"""The HTML report (xai_core.report): offline, every picture embedded and equal to the page's, every method's
parameters, the versions and seeds recorded, numbers in the summary that are the page's numbers, bounded size."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version

import numpy as np
import pytest

from xai_core.analysis import agreement as ag
from xai_core.data.images import to_display
from xai_core.methods import Target
from xai_core.quality import cascading_randomization, leaderboard, metric_frame, trust_report
from xai_core.report import MAX_MAPS, Chart, Section, Text, over_limit, page_report, render_html
from xai_core.report.compare import compare_report
from xai_core.report.facts import LIBRARIES, REPO_ROOT, xai_lens_version
from xai_core.report.trust import LocalisationRun, SanityRun, ScaleRun, TrustRuns
from xai_core.report.trust import trust_report as trust_document
from xai_core.report.vega import Converted
from xai_core.report.visualize import MapChecks, visualize_report
from xai_core.viz.render import colorize, normalization_scale, normalize, overlay

from .conftest import STYLE, explained_column, photo_items
from .html_parse import assert_self_contained, decode, parse


@pytest.fixture(scope="session")
def visualize_case(tiny, tiny_nobias, tiny_items):
    columns = [explained_column(b, "smoothgrad", tiny_items, params={"samples": 4, "noise_level": 0.2, "seed": 7})
               for b in (tiny, tiny_nobias)]
    first = columns[0]
    images = np.concatenate([c.x for c in first.cells])
    maps = np.stack([c.expl.maps[0, 0] for c in first.cells])
    targets = np.array([c.expl.indices[0, 0] for c in first.cells])
    checked = trust_report(tiny, "smoothgrad", images, maps, targets, first.params, [c.item.name for c in first.cells],
                           steps=5)
    checks = MapChecks((("tiny", "Sanity check (precomputed): SmoothGrad changes with the model.", False),),
                       (("tiny", checked),), 5)
    report = visualize_report(columns, Target.predicted(), STYLE, "center-crop", checks)
    return columns, report, render_html(report)


@pytest.fixture(scope="session")
def compare_case(tiny, tiny_items):
    grid = [explained_column(tiny, m, tiny_items) for m in ("gradient", "input_t_gradient", "gradcam")]
    names = [c.spec.label for c in grid]
    pictures = [to_display(c.x[0]) for c in grid[0].cells]
    maps = {n: [c.expl.maps[0, 0] for c in col.cells] for n, col in zip(names, grid)}
    frame = ag.agreement_frame(maps, [c.item.name for c in grid[0].cells], 10, "abs")
    report = compare_report(grid, names, maps, pictures, frame, STYLE, mode="methods", target=Target.predicted(),
                            fit="center-crop", k=10, by="abs")
    return grid, frame, report, render_html(report)


def test_report_fetches_nothing_outside_the_file(visualize_case, compare_case):
    for text in (visualize_case[2], compare_case[3]):
        assert_self_contained(text)


def test_every_picture_is_embedded_and_is_the_one_the_page_draws(visualize_case):
    columns, report, text = visualize_case
    imgs = parse(text).images()
    assert all(i["src"].startswith("data:image/") for i in imgs)
    decoded = [decode(i["src"]) for i in imgs]  # every one is a readable picture
    expected = []
    for i in range(len(columns[0].cells)):
        for col in columns:
            cell = col.cells[i]
            picture = to_display(cell.x[0])
            norm = normalize(col.cells[i].expl.maps[0, 0], True, STYLE.norm, STYLE.percentile)
            expected += [picture, colorize(norm, True, STYLE.cmap),
                         overlay(picture, norm, True, STYLE.cmap, STYLE.alpha)]
    assert len(decoded) == len(expected) + 1 + report.count(Chart) == 21  # + the colour bar and each chart's PNG
    for got, want in zip(decoded, expected):  # small pictures are PNG: exactly the page's pixels
        np.testing.assert_array_equal(got, want)
    fallbacks = [i for i in imgs if i.get("class") == "fallback"]
    assert len(fallbacks) == report.count(Chart) == 2
    assert all(decode(i["src"]).shape[0] > 50 for i in fallbacks)


def test_report_records_parameters_versions_commit_and_seeds(visualize_case, compare_case):
    columns, _, text = visualize_case
    plain = parse(text).plain
    for p in columns[0].spec.params:
        assert f"{p.label} ({p.name}) = {columns[0].params[p.name]}" in plain
    assert "SmoothGrad: Random seed7" in plain  # label, then value in the next cell
    number, commit = xai_lens_version()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    assert f"{number}, commit {commit}" in plain and commit.startswith(head)
    for lib in LIBRARIES:
        assert f"{lib}{version(lib)}" in plain, lib  # one table row
    assert "tiny: random pixel order of deletion / insertion0" in plain
    grid, _, _, compare_text = compare_case
    compare_plain = parse(compare_text).plain
    for col in grid:
        assert f"{col.spec.label} ({col.spec.id}" in compare_plain
        for p in col.spec.params:
            assert f"{p.label} ({p.name}) = " in compare_plain
        assert col.spec.caveat in compare_plain  # "when it misleads"


def test_the_value_of_one_under_each_map_is_its_normalisation(visualize_case):
    columns, _, text = visualize_case
    values = [float(v) for v in re.findall(r"<figcaption>heatmap · [^·<]+ · 1 = ([0-9.e+-]+)", text)]
    want = [float(normalization_scale(c.expl.maps[0, 0], True, STYLE.norm, STYLE.percentile).ravel()[0])
            for i in range(3) for col in columns for c in [col.cells[i]]]
    np.testing.assert_allclose(values, want, rtol=5e-3)


def test_summary_is_written_from_the_pages_numbers(compare_case, visualize_case):
    _, frame, report, _ = compare_case
    table = ag.mean_table(frame).sort_values(ag.METRICS["spearman"], ascending=False)
    best = table.iloc[0]
    line = next(s for s in report.summary if s.startswith("Most alike"))
    assert f"{best['row']} and {best['column']}" in line and f"ρ = {best[ag.METRICS['spearman']]:.2f}" in line
    columns, vis_report, _ = visualize_case
    probs = columns[0].cells[0].probs
    assert f"({probs.max():.1%})" in vis_report.summary[1]
    assert any("beats a random order" in s for s in vis_report.summary)


def test_text_from_users_is_escaped(visualize_case):
    doc = parse(visualize_case[2])
    assert not [t for t, _ in doc.tags if t == "b"]
    assert "tiny <b>0</b>" in doc.plain


def test_a_request_over_the_limit_is_refused_with_the_limit():
    assert over_limit(MAX_MAPS) is None
    message = over_limit(MAX_MAPS + 12)
    assert message and str(MAX_MAPS) in message and str(MAX_MAPS + 12) in message


def test_without_the_converter_charts_are_described_and_nothing_breaks(visualize_case, monkeypatch):
    import xai_core.report.html as report_html

    monkeypatch.setattr(report_html, "convert", lambda specs: Converted("", [None] * len(specs), ["converter gone"]))
    doc = parse(render_html(visualize_case[1]))
    assert not [a for a, _ in doc.scripts if a.get("id") == "vega-bundle"]
    assert "converter gone" in doc.plain and "Bars of the top class probabilities" in doc.plain


def test_a_new_section_is_one_function_away(visualize_case):
    report = visualize_case[1].with_section(Section("Strategies", (Text("Explain the **least sure** first."),)),
                                            ("Strategy: least sure first.",), before="Models")
    doc = parse(render_html(report))
    assert [s.title for s in report.sections].index("Strategies") == [s.title for s in report.sections].index(
        "Models") - 1
    assert "Strategy: least sure first." in doc.plain and ("section", {"id": "strategies"}) in doc.tags
    own = page_report("Suggest: strategies", "Suggest", [Section("Strategies", (Text("Least sure first."),))],
                      ["One strategy."], settings=[("data set", "digits")])
    assert [s.title for s in own.sections] == ["Strategies", "Reproduce"]
    plain = parse(render_html(own)).plain
    assert "pageSuggest" in plain and "data setdigits" in plain and "random seedsnone used" in plain


def test_8_images_by_3_methods_at_224_pixels_stay_under_5_mb(bundle_224):
    items = photo_items(8)
    grid = [explained_column(bundle_224, m, items) for m in ("gradient", "input_t_gradient", "gradcam")]
    names = [c.spec.label for c in grid]
    pictures = [to_display(c.x[0]) for c in grid[0].cells]
    maps = {n: [c.expl.maps[0, 0] for c in col.cells] for n, col in zip(names, grid)}
    frame = ag.agreement_frame(maps, [i.name for i in items], 10, "abs")
    text = render_html(compare_report(grid, names, maps, pictures, frame, STYLE, mode="methods",
                                      target=Target.predicted(), fit="center-crop", k=10, by="abs"))
    assert len(text.encode()) <= 5_000_000
    assert len(parse(text).images()) >= 8 * (1 + 3 * 2)


def test_trust_report_holds_every_check_that_ran(tiny, images):
    x = images[:4]
    masks = np.zeros(x.shape[:3], bool)
    masks[:, 4:12, 4:12] = True
    loc = metric_frame(tiny, ["gradient", "random"], x, ["pointing_game", "relevance_mass"], masks=masks)
    scale = metric_frame(tiny, ["gradient", "random"], x, ["deletion_auc", "insertion_gain"], steps=5)
    sanity = cascading_randomization(tiny, "gradient", x[:2], max_steps=2)
    runs = TrustRuns(LocalisationRun(tiny, loc, 4, 2), SanityRun(tiny, sanity, "tiny[:2]"),
                     ScaleRun(tiny, "tiny set", scale, "insertion_gain", 4, 0, "predicted", 5))
    report = trust_document(runs)
    doc = parse(render_html(report))
    titles = [s.title for s in report.sections]
    assert titles[:3] == ["Localisation leaderboard", "Sanity check", "Data-set scale"]
    assert sanity.verdict in report.summary
    assert len([a for a in doc.images() if a.get("class") == "fallback"]) == 4  # 2 leaderboards, sanity, scale
    for line, metric in zip(report.summary, ("pointing_game", "relevance_mass")):
        best = leaderboard(loc, metric).iloc[0]
        assert f"**{best['label']}** is best ({best['mean']:.2f} ± {best['sd']:.2f})" in line
    with pytest.raises(ValueError):
        trust_document(TrustRuns())


def test_model_facts_name_the_file_and_how_the_model_reads_its_input():
    import hashlib

    from xai_core.models.demo import DEMO_MODELS, load_demo_model
    from xai_core.report.document import Facts
    from xai_core.report.facts import file_sha256, model_blocks

    bundle = load_demo_model("digits_cnn")
    assert file_sha256(bundle) == hashlib.sha256(DEMO_MODELS["digits_cnn"].path.read_bytes()).hexdigest()
    facts = dict(next(b for b in model_blocks(bundle) if isinstance(b, Facts)).rows)
    assert facts["input"].startswith("32×32×1") and facts["preprocessing"].startswith("*unit*: pixels / 255")
    assert facts["held-out accuracy"].startswith(f"{DEMO_MODELS['digits_cnn'].test_accuracy:.1%}")
    assert "seed 0" in facts["trained on"] and f"{bundle.num_params:,} parameters" in facts["size"]


def test_top_neurons_and_a_failed_map_are_laid_out_as_on_the_page(tiny, tiny_items):
    from ui.explanations import Cell

    column = explained_column(tiny, "gradient", tiny_items[:2], Target.top_neurons("conv2", 4))
    first = column.cells[0]
    column.cells[1] = Cell(column.cells[1].item, "x", column.cells[1].x, column.cells[1].probs, None,
                           "Gradient on tiny: something a person can act on.")
    report = visualize_report([column], Target.top_neurons("conv2", 4), STYLE, "center-crop")
    doc = parse(render_html(report))
    pictures = [i for i in doc.images() if i.get("class") not in ("fallback",) and "colour scale" not in i["alt"]]
    assert len(pictures) == 1 + 4 * 2 + 1  # input + 4 neurons × (heatmap, overlay); the failed cell: its input
    assert [i["alt"].split(" · ")[0] for i in pictures[1:9:2]] == ["heatmap"] * 4
    assert all(label in doc.plain for label in first.expl.labels[0])
    assert "no map" in doc.plain and "something a person can act on" in doc.plain
    assert "the 4 most activated neurons of layer conv2" in report.summary[0]
