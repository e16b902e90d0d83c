"""Suggest's strategies report: SpRAy of one class — how many strategies the eigengap finds, each cluster's mean map
over its mean image, its size and where its relevance sits, the t-SNE of the maps, a few images of each cluster, the
shortcut check when it ran, how to read it and when it misleads, the method's card, the model, and what reproduces
it. The charts and pictures are the page's own (:mod:`xai_core.viz.strategies_charts`,
:mod:`xai_core.viz.strategies_pictures`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from xai_core.analysis import shortcut as sc
from xai_core.analysis import strategies as spray
from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode
from xai_core.methods import get_method
from xai_core.models.bundle import ModelBundle
from xai_core.report.document import (
    Block,
    Chart,
    ColourScale,
    Details,
    Facts,
    Figure,
    Picture,
    Report,
    Section,
    Table,
    Text,
)
from xai_core.report.page import page_report
from xai_core.viz.strategies_charts import cluster_chart, eigen_chart, embedding_chart, shortcut_chart
from xai_core.viz.strategies_pictures import MEAN_OF, cluster_pictures, region_picture

#: Images of each cluster shown in the report (the first ones, in data set order; the page lists them all).
MEMBERS_SHOWN = 8
#: Longer side of those thumbnails in pixels (a 64×64 image is kept exactly; larger ones are reduced).
THUMB_SIDE = 64
#: Cluster pictures per row of the report's figure (as on the page).
PER_ROW = 4
#: The t-SNE chart holds at most this many images (a seeded sample above: its data is inlined, about 0.3 KB each).
MAX_POINTS = 3000


@dataclass(frozen=True)
class StrategiesRun:
    """What Suggest's Strategies view computed: the analysis ``result`` of ``model`` on ``dataset``, shown with ``k``
    clusters; how the class's images were chosen (``members``: ``"label"`` or ``"prediction"``), the neighbours
    asked for (None: √ of the images), the fit of the images to the model's input, and the shortcut check of one
    cluster (None when it did not run)."""

    model: ModelBundle
    dataset: Dataset
    result: spray.Strategies
    k: int
    members: str = "label"
    neighbours: int | None = None
    fit: FitMode = "center-crop"
    check: sc.ShortcutCheck | None = None


def _pct(values: pd.Series) -> list[str]:
    return [f"{v:.0%}" for v in values]


def cluster_frame(table: pd.DataFrame, class_name: str) -> pd.DataFrame:
    """:func:`~xai_core.analysis.strategies.cluster_table` as the report prints it (shares in per cent)."""
    return table.assign(share=_pct(table["share"]), concentration=_pct(table["concentration"]),
                        right=_pct(table["right"])).rename(columns={
        "size": "images", "where": "relevance sits", "concentration": "in the hottest 5 %",
        "score": "mean class score", "right": f"predicted {class_name}"})


def summary_lines(run: StrategiesRun, table: pd.DataFrame) -> list[str]:
    """The report's first lines, from the numbers: the class and its strategies, each cluster's size and where its
    relevance sits, the most concentrated cluster, the recorded tag, the shortcut check (or that it did not run)."""
    s, k = run.result, run.k
    cm = s.maps
    chosen = ("the eigengap's choice" if k == s.suggested else
              f"chosen on the page; the eigengap suggests {s.suggested}")
    lines = [f"Class **{cm.class_name}**: {len(cm)} images (by {run.members}) explained with "
             f"{get_method(cm.method).label} on {run.model.name}; **{k} strateg{'y' if k == 1 else 'ies'}** "
             f"({chosen})."]
    if k > 1:
        lines.append("Clusters: " + "; ".join(f"{r.cluster} — {r.size} images ({r.share:.0%}), relevance sits "
                                              f"{r.where}" for r in table.itertuples()) + ".")
        top = table.loc[table["concentration"].idxmax()]
        lines.append(f"Cluster {top['cluster']} ({top['size']} images) is the most concentrated: "
                     f"{top['concentration']:.0%} of its positive relevance in the hottest 5 % of the image, most of "
                     f"it in the **{top['where']}** — the likeliest shortcut.")
    else:
        lines.append(f"One cluster of {len(cm)} images: its relevance sits {table['where'].iloc[0]}.")
    if run.dataset.tagged is not None:
        lines.append(spray.tag_text(s.clusters(k), run.dataset.tagged[cm.index]))
    if run.check is not None:
        lines.append(f"Shortcut check of cluster {run.check.cluster} (hot region {run.check.area:.0%} of the "
                     f"image): {sc.verdict(run.check)}")
    else:
        lines.append("The shortcut check did not run: nothing in this report measures whether a cluster's region "
                     "carries the class score.")
    return lines


def strategies_section(run: StrategiesRun, table: pd.DataFrame) -> Section:
    """How to read it, the settings, the eigengap, the clusters (sizes, mean maps, numbers), the t-SNE, and when it
    misleads."""
    s, k, cm = run.result, run.k, run.result.maps
    pictures = cluster_pictures(run.model, run.dataset, s, k, run.fit)
    cells = [Picture(p, spray.describe_cluster(table.iloc[c], cm.class_name), f"cluster {c}: mean map over its mean "
                     "image") for c, p in enumerate(pictures)]
    rows = tuple(tuple(cells[i:i + PER_ROW]) for i in range(0, len(cells), PER_ROW))
    scale = ColourScale("bwr" if cm.signed else "jet", cm.signed,
                        f"1 = the largest |value| of each cluster's mean map, drawn over the mean of (up to {MEAN_OF} "
                        "of) its images")
    neighbours = f"{s.spectral.neighbours}" + (" (√ of the images)" if run.neighbours is None else " (chosen)")
    eigen = spray.eigen_frame(s)
    selected = run.check.cluster if run.check is not None else None
    bars = cluster_chart(table, k, selected).properties(width=max(280, 110 * k))
    frame = tsne_frame(run)
    tagged = ", triangles for the images the data set records as tagged" if "tagged" in frame else ""
    sampled = (f" A random sample of {len(frame):,} of the {len(cm):,} images (seed 0) is drawn."
               if len(frame) < len(cm) else "")
    blocks: list[Block] = [
        Text(spray.HOW_TO_READ),
        Facts((("model", run.model.name), ("data set", f"{run.dataset.name} ({len(run.dataset):,} images)"),
               ("class", f"{cm.class_index} ({cm.class_name}): {len(cm):,} images, chosen by {run.members}"),
               ("method", f"{get_method(cm.method).label} for the class's logit"),
               ("relevance", spray.RELEVANCE[s.relevance]), ("pooled grid", f"{s.grid}×{s.grid} cells"),
               ("nearest neighbours", neighbours),
               ("clusters", f"{k} shown; the eigengap suggests {s.suggested} (1 to {max(s.labels)} offered)"))),
        *[Text(w, "warning") for w in cm.warnings],
        Chart(eigen_chart(eigen).properties(width=280), "The smallest eigenvalues of the graph's Laplacian; the "
              "eigengap's number of clusters in red: the largest jump comes right after it.",
              "Line of the Laplacian's smallest eigenvalues; the numbers are in the table below."),
        Details("The eigenvalues as numbers", (Table(eigen),)),
        Chart(bars, "Images per cluster, with where its relevance sits" + (
            f"; cluster {selected} (outlined) is the one the shortcut check masks." if selected is not None else "."),
              "Bars of the number of images per cluster; the numbers are in the table below."),
        Figure(rows, scale=scale, caption="Each cluster's mean map over its mean image, at the model's input size."),
        Table(cluster_frame(table, cm.class_name), caption="Per cluster: its images, their share of the class, the "
              "3×3 region holding most of the mean map's positive relevance, the share of it in the hottest 5 % of "
              "the pixels (100 %: a spot), the mean class score (logit) and the share predicted as the class."),
        *([Text(spray.tag_text(s.clusters(k), run.dataset.tagged[cm.index]), "note")]
          if run.dataset.tagged is not None else []),
        Chart(embedding_chart(frame, k, height=380).properties(width=480), "The maps in 2-D: t-SNE of the spectral "
              f"embedding (seed {s.seed}), one point per image, coloured by cluster{tagged}; hover a point for its "
              f"image id and class score.{sampled}", f"Scatter of {len(frame)} images in 2-D, coloured by cluster."),
        Text(spray.MISLEADS, "warning")]
    return Section("Strategies", tuple(blocks))


def tsne_frame(run: StrategiesRun, max_points: int | None = None) -> pd.DataFrame:
    """The t-SNE chart's data: :func:`~xai_core.analysis.strategies.image_frame` with what the chart draws (positions
    and scores to 3 decimals), at most ``max_points`` (default :data:`MAX_POINTS`) images: above, a sample drawn
    with seed 0, in data set order."""
    limit = MAX_POINTS if max_points is None else max_points
    frame = spray.image_frame(run.result, run.k, run.dataset.ids, run.dataset.tagged).drop(columns="predicted")
    frame = frame.round({"x": 3, "y": 3, "score": 3})
    return frame.sample(limit, random_state=0).sort_index() if len(frame) > limit else frame


def members_section(run: StrategiesRun, per_cluster: int = MEMBERS_SHOWN) -> Section:
    """The first ``per_cluster`` images of each cluster (data set order) with their class score."""
    s, k = run.result, run.k
    frame = spray.image_frame(s, k, run.dataset.ids)
    rows: list[tuple[Picture | None, ...]] = []
    labels: list[str] = []
    for c in range(k):
        members = frame[frame["cluster"] == c]
        shown = members.head(per_cluster)
        thumbs = run.dataset.thumbnails(shown["index"], THUMB_SIDE)
        rows.append(tuple(Picture(t, f"{str(r.id).rsplit('/', 1)[-1]}  \nscore {r.score:.2f}",
                                  f"image {r.id} of cluster {c}", width=88)
                          for t, r in zip(thumbs, shown.itertuples())))
        labels.append(f"cluster {c}  \n" + (f"first {len(shown)} of {len(members)} images" if len(members) > len(shown)
                                            else f"all {len(members)} image{'s' if len(members) != 1 else ''}"))
    truncated = len(frame) > sum(min(per_cluster, int((frame["cluster"] == c).sum())) for c in range(k))
    note = (f"At most {per_cluster} images per cluster, the first in data set order, with their class score (logit)"
            + ("; the page lists every image, and its cluster membership download (CSV) names them all."
               if truncated else "."))
    return Section("Images of each cluster", (Text(note, "note"), Figure(tuple(rows), row_labels=tuple(labels))))


def shortcut_section(run: StrategiesRun) -> Section:
    """The shortcut check as the page showed it (its verdict, the region, the scores, every image), or that it did not
    run."""
    check = run.check
    if check is None:
        return Section("Shortcut check", (Text(
            "The shortcut check did not run for this analysis: nothing here says whether a cluster's hot region "
            "carries the class score. On the page, choose a cluster under *Cluster to look at*: its check runs "
            "below it.", "note"),))
    summary = check.summary()
    groups = summary.drop_duplicates("group").set_index("group")["images"]
    picture = region_picture(run.model, run.dataset, run.result, check, run.fit)
    blocks: list[Block] = [
        Text(sc.verdict(check)),
        Facts((("cluster", f"{check.cluster} of {check.k}"),
               ("hot region", f"the hottest {check.area:.0%} of the cluster's mean map (smoothed 3×3): "
                              f"{check.region.mean():.1%} of the image"),
               ("images", ", ".join(f"{g}: {n}" for g, n in groups.items())
                + f" (at most {check.max_images} per group, sample seed {check.seed})"))),
        *([Figure(((Picture(picture, "The hot region on one image of the cluster", width=192),),))]
          if picture is not None else []),
        Chart(shortcut_chart(check.frame, sc.GROUPS, sc.CONDITIONS), "Each image's class score per condition (thin "
              "lines) and the mean (red points), one panel per group.",
              "Class scores before and after masking or pasting the hot region; the numbers are in the table below."),
        Table(summary.assign(score=[f"{v:.2f}" for v in summary["score"]],
                             change=[f"{v:+.2f}" for v in summary["change"]],
                             probability=_pct(summary["probability"]), is_class=_pct(summary["is_class"])).rename(
            columns={"score": "mean class score", "change": "mean change", "probability": f"p({check.class_name})",
                     "is_class": f"called {check.class_name}"}),
              caption="Per group and condition: images, mean class score (logit), its mean change, the mean "
                      "probability of the class and the share predicted as it."),
        Text(sc.HOW_TO_READ, "note"),
        Details("Every image: its class score and each change", (Table(check.per_image()),))]
    return Section("Shortcut check", tuple(blocks))


def strategies_report(run: StrategiesRun) -> Report:
    """The report of what Suggest's Strategies view shows for ``run``."""
    s, k = run.result, run.k
    cm = s.maps
    if run.check is not None and run.check.k != k:
        raise ValueError(f"the shortcut check is of cluster {run.check.cluster} of {run.check.k}, the report shows {k}")
    table = spray.cluster_table(s, k)  # raises InvalidParameterError for a k that was not computed
    spec = get_method(cm.method)
    sparse = len(cm) > spray.DENSE_EIGEN
    settings = [("data set", run.dataset.name),
                ("class", f"{cm.class_index} ({cm.class_name}), images by {run.members}"),
                ("fit to the model's input", run.fit), ("relevance", s.relevance),
                ("pooled grid", f"{s.grid}×{s.grid}"),
                ("nearest neighbours", f"{s.spectral.neighbours}" + (" (√ of the images)" if run.neighbours is None
                                                                      else "")),
                ("eigenvectors", "sparse (ARPACK)" if sparse else "dense (scipy.linalg.eigh)"),
                ("number of clusters", f"{k} (eigengap: {s.suggested})"),
                ("k-means", "10 initialisations on the first k eigenvectors, rows normalised"),
                ("t-SNE", f"{spray.TSNE_ITER} iterations, perplexity {spray.tsne_perplexity(len(cm)):g}, PCA "
                          "initialisation, on the leading eigenvectors")]
    random = [("k-means random_state", str(s.seed)), ("t-SNE random_state", str(s.seed))]
    if sparse:
        random.append(("ARPACK start vector (numpy default_rng)", "0"))
    if run.check is not None:
        settings.append(("shortcut check", f"cluster {run.check.cluster}, hot region {run.check.area:.0%}"))
        random.append(("shortcut check: image sample", str(run.check.seed)))
    sections = (strategies_section(run, table), members_section(run), shortcut_section(run))
    return page_report(f"Suggest: strategies of '{cm.class_name}' ({k} cluster{'s' if k != 1 else ''})", "Suggest",
                       sections, summary_lines(run, table), methods=[(spec, cm.params)], models=[run.model],
                       target=f"class {cm.class_index} ({cm.class_name}): its logit, for each image of the class",
                       settings=settings, random=random)
