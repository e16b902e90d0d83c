"""Trust's report: whichever checks the page ran — the localisation leaderboard, the sanity check, a metric at data-set
scale — with their charts, numbers, worst images and how to read them, the methods' cards, the models, and what
reproduces them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xai_core.data.images import to_display
from xai_core.methods import get_method
from xai_core.models.bundle import ModelBundle
from xai_core.quality import METRICS, SanityResult, leaderboard
from xai_core.quality.localisation import HOW_TO_READ as LOCALISATION_HOW_TO_READ
from xai_core.quality.report import HOW_TO_READ as CURVES_HOW_TO_READ
from xai_core.quality.sanity import HOW_TO_READ as SANITY_HOW_TO_READ
from xai_core.report.document import Block, Chart, Facts, Figure, Picture, Report, Section, Table, Text
from xai_core.report.page import page_report
from xai_core.report.summary import leaderboard_line
from xai_core.viz.quality_charts import dataset_chart, leaderboard_chart, sanity_chart
from xai_core.viz.render import normalize, overlay


@dataclass(frozen=True)
class WorstShown:
    """The worst images the page showed for ``method`` on ``metric``: ``(caption, uint8 RGB map over the image)``."""

    method: str
    metric: str
    pictures: tuple[tuple[str, np.ndarray], ...] = ()


def worst_picture(pixels: np.ndarray, heat: np.ndarray, signed: bool) -> np.ndarray:
    """A worst image as the Trust page draws it: its map (normalised to the 99.5th percentile) over the image, uint8
    RGB at the model's input size."""
    return overlay(to_display(pixels), normalize(heat, signed, "percentile", 99.5), signed, alpha=0.6)


@dataclass(frozen=True)
class LocalisationRun:
    model: ModelBundle
    frame: pd.DataFrame  # :func:`~xai_core.quality.scale.localisation_leaderboard`
    n: int
    margin: int
    seed: int = 0
    worst: WorstShown | None = None


@dataclass(frozen=True)
class SanityRun:
    model: ModelBundle
    result: SanityResult
    images: str  # which images, in words ("shapes/test[:4]")


@dataclass(frozen=True)
class ScaleRun:
    model: ModelBundle
    dataset: str
    frame: pd.DataFrame  # :func:`~xai_core.quality.scale.dataset_metrics`
    metric: str
    n: int
    seed: int
    target: str  # "predicted" or "label"
    steps: int
    worst: WorstShown | None = None


@dataclass
class TrustRuns:
    """What the Trust page computed in this run (None for a check it did not run)."""

    localisation: LocalisationRun | None = None
    sanity: SanityRun | None = None
    scale: ScaleRun | None = None

    def any(self) -> bool:
        return any(r is not None for r in (self.localisation, self.sanity, self.scale))


def _board_table(frame: pd.DataFrame, metric: str) -> Table:
    board = leaderboard(frame, metric)[["label", "method", "mean", "sd", "n"]]
    spec = METRICS[metric]
    return Table(board, caption=f"{spec.label} ({'higher' if spec.higher_is_better else 'lower'} is better): "
                                f"{spec.help}")


def _worst(worst: WorstShown | None) -> list[Block]:
    if worst is None or not worst.pictures:
        return []
    label = METRICS[worst.metric].label if worst.metric in METRICS else worst.metric
    return [Text(f"Where **{get_method(worst.method).label}** scores worst on *{label}*: each image with its map."),
            Figure((tuple(Picture(p, c, width=112) for c, p in worst.pictures),))]


def localisation_section(run: LocalisationRun) -> Section:
    blocks: list[Block] = [Text(LOCALISATION_HOW_TO_READ),
                           Facts((("model", run.model.name), ("images", f"{run.n} of the demo shapes test set "
                                                                         f"(sample seed {run.seed})"),
                                  ("pointing-game margin", f"{run.margin} pixels")))]
    for metric in ("pointing_game", "relevance_mass"):
        blocks += [Chart(leaderboard_chart(leaderboard(run.frame, metric)),
                         f"{METRICS[metric].label}: mean ± sd over {run.n} images.",
                         f"Bars of {METRICS[metric].label} per method; the numbers are in the table below."),
                   _board_table(run.frame, metric)]
    return Section("Localisation leaderboard", (*blocks, *_worst(run.worst)))


def sanity_section(run: SanityRun) -> Section:
    r = run.result
    blocks: list[Block] = [
        Text(SANITY_HOW_TO_READ),
        Text(r.verdict, "warning" if r.insensitive else "p"),
        Facts((("model", run.model.name), ("method", get_method(r.method).label), ("images", run.images),
               ("randomised models", f"{len(r.frame['step'].unique()) - 1}, down to all {len(r.layers)} layers "
                                     "with weights"), ("random weights seed", str(r.seed)),
               ("flag", f"insensitive when the mean rank correlation over the cascade exceeds {r.threshold:.2f}"))),
        Chart(sanity_chart(r.frame, r.threshold).properties(width=max(240, 60 * len(r.layers))),
              "Rank correlation with the original maps as layers are randomised from the top down: one point per "
              "image, the mean as a line, the flag as a dashed rule.",
              "Rank correlation per randomised layer; the numbers are in the table below."),
        Table(r.summary(), caption="Per step of the cascade.")]
    return Section("Sanity check", tuple(blocks))


def scale_section(run: ScaleRun) -> Section:
    spec = METRICS[run.metric]
    metrics = [m for m in METRICS if m in set(run.frame["metric"])]
    blocks: list[Block] = [
        Text(CURVES_HOW_TO_READ),
        Facts((("model", run.model.name), ("data set", run.dataset),
               ("images", f"{run.n} sampled (seed {run.seed})"),
               ("explained", "the labelled class" if run.target == "label" else "the predicted class"),
               ("deletion / insertion", f"{run.steps} steps, random order seed {run.seed}"))),
        Chart(dataset_chart(leaderboard(run.frame, run.metric)), f"{spec.label}: mean ± sd per method.",
              f"Bars of {spec.label} per method; the numbers are in the tables below."),
        *[_board_table(run.frame, m) for m in metrics]]
    return Section("Data-set scale", (*blocks, *_worst(run.worst)))


def trust_report(runs: TrustRuns) -> Report:
    """The report of the checks ``runs`` holds (at least one)."""
    if not runs.any():
        raise ValueError("a Trust report needs at least one check that ran")
    sections: list[Section] = []
    summary: list[str] = []
    settings: list[tuple[str, str]] = []
    random: list[tuple[str, str]] = []
    methods: dict[str, None] = {}
    bundles: dict[int, ModelBundle] = {}
    if (loc := runs.localisation) is not None:
        summary += [leaderboard_line(leaderboard(loc.frame, m), m, loc.n) for m in ("pointing_game", "relevance_mass")]
        sections.append(localisation_section(loc))
        methods.update(dict.fromkeys(loc.frame["method"]))
        bundles[id(loc.model)] = loc.model
        random.append(("localisation: image sample", str(loc.seed)))
    if (san := runs.sanity) is not None:
        summary.append(san.result.verdict)
        sections.append(sanity_section(san))
        methods[san.result.method] = None
        bundles[id(san.model)] = san.model
        random.append(("sanity check: re-initialised weights", str(san.result.seed)))
    if (sc := runs.scale) is not None:
        summary.append(leaderboard_line(leaderboard(sc.frame, sc.metric), sc.metric, sc.n))
        sections.append(scale_section(sc))
        methods.update(dict.fromkeys(sc.frame["method"]))
        bundles[id(sc.model)] = sc.model
        random += [("data-set scale: image sample", str(sc.seed)),
                   ("data-set scale: random pixel order of deletion / insertion", str(sc.seed))]
        settings.append(("data-set scale", f"{sc.dataset}, {sc.n} images, metric {METRICS[sc.metric].label}"))
    specs = [get_method(mid) for mid in methods]
    return page_report(f"Trust: {len(sections)} check{'s' if len(sections) > 1 else ''} of {len(specs)} method"
                       f"{'s' if len(specs) != 1 else ''}", "Trust", sections, summary,
                       methods=[(spec, spec.resolve_params(None)) for spec in specs], models=list(bundles.values()),
                       target="see each check (the methods run at their defaults)", settings=settings, random=random)
