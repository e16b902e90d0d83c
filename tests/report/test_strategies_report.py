"""Suggest's strategies report (xai_core.report.strategies) on the bias demo: offline, every picture embedded and the
page's own, the method's parameters, versions and seeds recorded, a summary whose numbers are the clustering's, the
shortcut check's mean drop when it ran and a sentence saying so when it did not, bounded size."""

from __future__ import annotations

import re
import time
from importlib.metadata import version

import numpy as np
import pytest

from xai_core.analysis import shortcut as sc
from xai_core.analysis import strategies as spray
from xai_core.errors import InvalidParameterError
from xai_core.methods import get_method
from xai_core.report import Chart, render_html
from xai_core.report.facts import LIBRARIES, params_text
from xai_core.report.strategies import MEMBERS_SHOWN, StrategiesRun, strategies_report
from xai_core.viz.strategies_pictures import cluster_pictures, region_picture

from .html_parse import assert_self_contained, decode, parse


@pytest.fixture(scope="session")
def tag_cluster(circle, tagged_test) -> int:
    return spray.agreement(circle.clusters(circle.suggested), tagged_test.tagged[circle.maps.index])[0]


@pytest.fixture(scope="session")
def checked(biased, tagged_test, circle, tag_cluster):
    """The report of the circle class as the page opens it: the eigengap's clusters, the tag cluster checked."""
    labels = tagged_test.labels
    pred = biased.predict(np.stack([tagged_test.reader(i) for i in range(len(tagged_test))])).argmax(1)
    others = np.flatnonzero((labels != circle.maps.class_index) & (pred != circle.maps.class_index))
    check = sc.shortcut_check(biased, tagged_test, circle, circle.suggested, tag_cluster, others)
    run = StrategiesRun(biased, tagged_test, circle, circle.suggested, "label", None, "center-crop", check)
    report = strategies_report(run)
    return run, report, render_html(report)


@pytest.fixture(scope="session")
def unchecked(biased, tagged_test, circle):
    """The same analysis shown with one cluster more than the eigengap suggests, without a shortcut check."""
    run = StrategiesRun(biased, tagged_test, circle, circle.suggested + 1)
    report = strategies_report(run)
    return run, report, render_html(report)


def test_strategies_report_fetches_nothing_outside_the_file(checked, unchecked):
    for _, _, text in (checked, unchecked):
        assert_self_contained(text)


def test_every_picture_is_embedded_and_the_clusters_are_the_pages(checked):
    run, report, text = checked
    s, k = run.result, run.k
    imgs = parse(text).images()
    assert imgs and all(i["src"].startswith("data:image/") for i in imgs)
    assert all(decode(i["src"]).size for i in imgs)  # every one is a readable picture
    sizes = np.bincount(s.clusters(k), minlength=k)
    members = int(np.minimum(sizes, MEMBERS_SHOWN).sum())
    fallbacks = [i for i in imgs if i.get("class") == "fallback"]
    assert len(fallbacks) == report.count(Chart) == 4  # eigengap, cluster sizes, t-SNE, shortcut check
    pictures = [decode(i["src"]) for i in imgs if i.get("class") != "fallback" and
                not i["alt"].startswith("colour scale")]
    assert len(pictures) == k + members + 1  # mean maps, members, hot region
    for got, want in zip(pictures[:k], cluster_pictures(run.model, run.dataset, s, k)):
        np.testing.assert_array_equal(got, want)  # 64×64: PNG, exactly the page's pixels (before its enlargement)
    first = s.maps.index[s.clusters(k) == 0][0]
    np.testing.assert_array_equal(pictures[k], run.dataset.thumbnail(first, 64))
    np.testing.assert_array_equal(pictures[-1], region_picture(run.model, run.dataset, s, run.check))


def test_summary_numbers_are_the_clusterings(checked, tag_cluster):
    run, report, _ = checked
    s, k = run.result, run.k
    table = spray.cluster_table(s, k)
    first, clusters = report.summary[0], report.summary[1]
    assert f"{len(s.maps)} images (by label)" in first and f"**{k} strategies** (the eigengap's choice)" in first
    sizes = [int(n) for n in re.findall(r"\d+ — (\d+) images", clusters)]
    assert sizes == list(np.bincount(s.clusters(k), minlength=k)) == list(table["size"])
    top = table.loc[table["concentration"].idxmax()]
    assert f"Cluster {top['cluster']} ({top['size']} images)" in report.summary[2]
    assert f"{top['concentration']:.0%} of its positive relevance" in report.summary[2]
    assert top["cluster"] == tag_cluster and "bottom-left" in report.summary[2]  # the tag's cluster and corner
    assert any(line.startswith(f"This demo records which images carry the tag: cluster {tag_cluster}")
               for line in report.summary)


def test_shortcut_checks_mean_drop_is_in_the_summary_and_section(checked):
    run, report, text = checked
    check = run.check
    drop = f"{check.drop(sc.GROUPS[0], sc.CONDITIONS[1]):+.2f}"
    line = next(s for s in report.summary if s.startswith("Shortcut check of cluster"))
    assert f"**{drop}**" in line and check.drop() <= -4.0  # the tag carries the circle score
    plain = parse(text).plain
    assert f"Masking the hot region moves the class score of the cluster's images by {drop}" in plain
    per_image = check.per_image()
    masked = per_image.loc[per_image["group"] == sc.GROUPS[0], f"change, {sc.CONDITIONS[1]}"]
    assert f"{masked.mean():+.2f}" == drop  # the mean of the per-image drops the report lists
    assert "Every image: its class score and each change" in plain


def test_without_a_check_the_report_says_so(unchecked):
    run, report, text = unchecked
    s, k = run.result, run.k
    assert f"{k} strategies** (chosen on the page; the eigengap suggests {s.suggested})" in report.summary[0]
    assert report.summary[-1].startswith("The shortcut check did not run")
    plain = parse(text).plain
    assert "Masking the hot region" not in plain and "The shortcut check did not run for this analysis" in plain
    assert report.count(Chart) == 3


def test_method_parameters_versions_and_seeds_are_recorded(checked):
    run, report, text = checked
    plain = parse(text).plain
    cm = run.result.maps
    assert params_text(get_method(cm.method), cm.params).replace("`", "") in plain
    assert "Epsilon (epsilon) = 0.1" in plain
    assert get_method(cm.method).caveat in plain and "When it misleads: clusters group maps, not reasons" in plain
    for lib in LIBRARIES:
        assert f"{lib}{version(lib)}" in plain, lib  # one table row
    assert "k-means random_state0" in plain and "t-SNE random_state0" in plain
    assert f"shortcut check: image sample{run.check.seed}" in plain
    assert f"number of clusters{run.k} (eigengap: {run.result.suggested})" in plain
    assert f"pooled grid{run.result.grid}" in plain and f"nearest neighbours{run.result.spectral.neighbours}" in plain
    assert [s.title for s in report.sections] == ["Strategies", "Images of each cluster", "Shortcut check", "Method",
                                                  "Models", "Reproduce"]


def test_members_are_bounded_and_the_truncation_is_said(unchecked):
    run, _, text = unchecked
    sizes = np.bincount(run.result.clusters(run.k), minlength=run.k)
    plain = parse(text).plain
    for c, n in enumerate(sizes):
        assert (f"cluster {c}first {MEMBERS_SHOWN} of {n} images" if n > MEMBERS_SHOWN else
                f"cluster {c}all {n} image") in plain


def test_a_mismatched_check_or_number_of_clusters_is_refused(checked, circle):
    run = checked[0]
    with pytest.raises(ValueError, match="shortcut check"):
        strategies_report(StrategiesRun(run.model, run.dataset, circle, run.k + 1, check=run.check))
    with pytest.raises(InvalidParameterError, match="clusters"):
        strategies_report(StrategiesRun(run.model, run.dataset, circle, 99))


def test_the_tsne_of_a_large_class_is_a_sample_and_says_so(unchecked, monkeypatch):
    import xai_core.report.strategies as module

    run = unchecked[0]
    full = module.tsne_frame(run)
    assert len(full) == len(run.result.maps) and "predicted" not in full
    monkeypatch.setattr(module, "MAX_POINTS", 40)
    sample = module.tsne_frame(run)
    assert len(sample) == 40 and sample["index"].is_unique and sample.index.is_monotonic_increasing
    assert sample.equals(full.loc[sample.index])  # the same rows, not other numbers
    chart = next(b for b in strategies_report(run).blocks() if isinstance(b, Chart) and "t-SNE" in b.caption)
    assert f"A random sample of 40 of the {len(full)} images (seed 0) is drawn." in chart.caption


def test_the_largest_strategies_report_stays_under_5_mb(biased, tagged_test, circle):
    """Every cluster the page offers, each with its thumbnails, and the check: ≤ 5 MB (size and build time
    printed; the time on 1,000 images is bench/bench_report.py's)."""
    k = max(circle.labels)
    cluster = int(spray.cluster_table(circle, k)["concentration"].idxmax())
    check = sc.shortcut_check(biased, tagged_test, circle, k, cluster)
    start = time.perf_counter()
    text = render_html(strategies_report(StrategiesRun(biased, tagged_test, circle, k, check=check)))
    seconds = time.perf_counter() - start
    size = len(text.encode())
    print(f"strategies report, {len(circle.maps)} images, {k} clusters: {size / 1e6:.2f} MB in {seconds:.2f} s")
    assert size <= 5_000_000
    assert len(parse(text).images()) <= k * (1 + MEMBERS_SHOWN) + 2 + 4
