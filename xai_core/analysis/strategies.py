"""A model's strategies across a data set: Spectral Relevance Analysis (SpRAy) of one class's relevance maps.

One map per image of the class (any method with signed or non-negative maps, computed in batches with one built
analyzer), pooled to a small grid, L1-normalised; a k-nearest-neighbour graph of the pooled maps; the eigenvalues
of its normalised Laplacian choose the number of clusters (the largest eigengap), and k-means on the leading
eigenvectors gives the clusters (Ng, Jordan & Weiss 2002); t-SNE of the same eigenvectors draws them in 2-D, as
CoRelAy / ViRelAy do. Everything that does not depend on the number of clusters is computed once
(:func:`find_strategies` clusters for every k up to :data:`MAX_CLUSTERS` at once), so choosing another number of
clusters recomputes nothing.

A cluster whose mean map puts its relevance on one small region of the image (a corner, an edge) is a candidate
shortcut ("Clever Hans"); :mod:`xai_core.analysis.shortcut` measures what that region does to the class score.

Ref. Lapuschkin et al. (2019), *Unmasking Clever Hans predictors and assessing what machines really learn*,
Nature Communications 10:1096; Anders et al. (2022), *Finding and removing Clever Hans: Using explanation methods
to debug and improve deep models*, Information Fusion 77 (CoRelAy / ViRelAy); von Luxburg (2007), *A tutorial on
spectral clustering*, Statistics and Computing 17 (the eigengap heuristic).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.neighbors import kneighbors_graph
from threadpoolctl import threadpool_limits

from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode
from xai_core.errors import InvalidParameterError
from xai_core.methods import Target, explain, get_method
from xai_core.models.bundle import ModelBundle

Relevance = Literal["positive", "signed", "absolute"]
#: How a map is read before clustering. ``positive`` (default): the evidence *for* the class, which is what a
#: strategy is; ``signed`` also groups images by their evidence *against* the class (e.g. a tag that speaks for
#: another class), ``absolute`` by where anything happens.
RELEVANCE: dict[str, str] = {"positive": "evidence for the class (positive part)", "signed": "signed relevance",
                             "absolute": "magnitude (|relevance|)"}
#: Side of the pooled grid the clustering sees (8×8: the tag of the bias demo in one or two cells, positions of
#: the objects blurred enough that "where" wins over "exactly where").
POOL_GRID = 8
#: Most clusters offered (and the eigengap searched up to).
MAX_CLUSTERS = 8
#: Maps are kept at most this many pixels a side (larger inputs are area-averaged): 1,000 maps of 224×224 would
#: take 200 MB; at 64×64 they take 16 MB and still show where relevance sits.
MAX_MAP_SIDE = 64
#: Up to this many maps the eigenvectors come from a dense decomposition, above it from a sparse one (ARPACK).
DENSE_EIGEN = 300
#: Fewest images a class needs for the analysis.
MIN_IMAGES = 10
#: t-SNE of the spectral embedding: iterations (250 of early exaggeration, then 100 of refinement) and the largest
#: perplexity. The input is a handful of eigenvectors in which the clusters are already apart, so a short run
#: draws them well; 1,000 points take ~1.5 s on the busy 2-core box where the Explorer's 500 iterations at
#: perplexity 30 took 3.9 s (bench/bench_strategies.py).
TSNE_ITER = 350
TSNE_PERPLEXITY = 15.0
#: How to read the view (the page's caption and the report's first paragraph).
HOW_TO_READ = (
    "**How to read it:** every image of the class is explained (its class score), the maps are pooled to a small "
    "grid and grouped by where their relevance sits (spectral clustering of a nearest-neighbour graph; "
    "Lapuschkin et al. 2019). Each cluster is one *strategy* of the model: its mean map over its mean image shows "
    "what those images are decided by. A small cluster whose relevance sits on a corner, an edge or the "
    "background is worth checking — below, the shortcut check masks that region and measures the score.")
#: When SpRAy misleads (the page's last caption and the report's warning).
MISLEADS = (
    "**When it misleads:** clusters group maps, not reasons — two strategies that use the same place look "
    "alike, and objects that sit in different places split one strategy into several (most visible on data "
    "without a fixed layout). The number of clusters is a suggestion (the largest eigengap); a map method that "
    "fails the sanity checks (Trust page) clusters noise. Signed relevance also groups images by evidence "
    "*against* the class. Only the shortcut check says whether a region really carries the score.")


def default_neighbours(m: int) -> int:
    """Nearest neighbours of the affinity graph for ``m`` maps: √m, at least 5, at most 30 (10 for 100 maps)."""
    return int(np.clip(round(np.sqrt(m)), 5, 30))


# ------------------------------------------------------------------------------------------------ maps
@dataclass(frozen=True, eq=False)
class ClassMaps:
    """Relevance maps of one class's images.

    Attributes
    ----------
    class_index, class_name : the class explained (its logit).
    method, params : the method and its resolved parameters; ``signed``: whether its maps carry a sign.
    index : int64 ``(M,)`` data set positions of the images (unreadable images are left out).
    maps : float32 ``(M, h, w)`` channel-summed maps, area-averaged to at most :data:`MAX_MAP_SIDE` a side.
    logits : float32 ``(M, K)`` the model's class scores (from the data set pass).
    warnings : distinct warnings of the method (empty maps, non-conservation …).
    seconds : wall time of the maps.
    """

    class_index: int
    class_name: str
    method: str
    params: dict[str, Any]
    signed: bool
    index: np.ndarray
    maps: np.ndarray
    logits: np.ndarray
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.index)

    @property
    def scores(self) -> np.ndarray:
        """The explained class's logit per image."""
        return self.logits[:, self.class_index]


def class_members(labels: np.ndarray, predicted: np.ndarray, class_index: int) -> tuple[np.ndarray, str]:
    """Data set positions of a class's images and how they were chosen: by label where the set has labels the
    model knows, else by the model's prediction (an unlabelled folder).

    ``labels`` and ``predicted`` are int64 per data set position (−1 = unknown / unreadable).
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if (labels >= 0).any():
        return np.flatnonzero(labels == class_index), "label"
    return np.flatnonzero(predicted == class_index), "prediction"


def shrink_maps(maps: np.ndarray, side: int = MAX_MAP_SIDE) -> np.ndarray:
    """Area-average ``(M, H, W)`` maps by an integer factor so that neither side exceeds ``side``."""
    m, h, w = maps.shape
    f = int(np.ceil(max(h, w) / side))
    if f <= 1:
        return maps.astype(np.float32)
    hh, ww = (h // f) * f, (w // f) * f
    return maps[:, :hh, :ww].reshape(m, hh // f, f, ww // f, f).mean(axis=(2, 4)).astype(np.float32)


def class_maps(bundle: ModelBundle, dataset: Dataset, class_index: int, index: Sequence[int] | np.ndarray,
               logits: np.ndarray, method_id: str, params: dict[str, Any] | None = None,
               fit: FitMode = "center-crop", batch_size: int = 64,
               progress: Callable[[int, int], None] | None = None) -> ClassMaps:
    """Maps of ``class_index``'s logit for the images at ``index``, in batches (the analyzer is built once).

    Parameters
    ----------
    index : data set positions of the class's images (:func:`class_members`).
    logits : ``(len(index), K)`` their class scores, from the data set's cached pass (not recomputed here).
    progress : ``progress(done, total)`` after each batch.

    Raises
    ------
    InvalidParameterError
        Fewer than :data:`MIN_IMAGES` images, or a class the model does not have.
    """
    spec = get_method(method_id)
    index = np.asarray(index, dtype=np.int64)
    if not 0 <= class_index < bundle.num_classes:
        raise InvalidParameterError(f"Class {class_index} is not one of the model's {bundle.num_classes} classes.")
    if len(index) < MIN_IMAGES:
        raise InvalidParameterError(
            f"Class '{bundle.class_names[class_index]}' has {len(index)} image(s) here; strategies need at least "
            f"{MIN_IMAGES}. Choose another class or a larger data set.")
    logits = np.asarray(logits, dtype=np.float32)
    row_of = {int(i): r for r, i in enumerate(index)}
    start = time.perf_counter()
    kept, chunks, warnings = [], [], []
    for batch in dataset.batches(bundle.input_size, bundle.channels, fit, batch_size, index):
        expl = explain(bundle, method_id, batch.images, Target.of_class(class_index), params,
                       batch_size=batch_size, logits=logits[[row_of[int(i)] for i in batch.indices]])
        chunks.append(shrink_maps(expl.maps[:, 0]))
        kept.append(batch.indices)
        warnings += expl.warnings
        if progress:
            progress(sum(len(k) for k in kept), len(index))
    if not kept:
        raise InvalidParameterError(f"None of the {len(index)} images of the class could be read.")
    got = np.concatenate(kept)
    return ClassMaps(
        class_index=int(class_index), class_name=bundle.class_names[class_index], method=method_id,
        params=spec.resolve_params(params), signed=spec.signed, index=got, maps=np.concatenate(chunks),
        logits=logits[[row_of[int(i)] for i in got]], warnings=list(dict.fromkeys(warnings)),
        seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------------------------- features
def _edges(n: int, g: int) -> np.ndarray:
    return np.linspace(0, n, g + 1).round().astype(np.int64)[:-1]


def pool_maps(maps: np.ndarray, grid: int = POOL_GRID, relevance: Relevance = "positive") -> np.ndarray:
    """The clustering's view of each map: relevance read as ``relevance``, averaged over a ``grid × grid`` grid of
    cells, divided by its total absolute relevance (L1; an all-zero map stays zero). Returns float64 ``(M, grid²)``.

    Ref. Lapuschkin et al. 2019 (maps downsized and normalised before the affinity); CoRelAy's ``Normalize``.
    """
    if relevance not in RELEVANCE:
        raise InvalidParameterError(f"Relevance must be one of {', '.join(RELEVANCE)}; got {relevance!r}.")
    m, h, w = maps.shape
    grid = int(min(grid, h, w))
    x = np.asarray(maps, dtype=np.float64)
    x = np.maximum(x, 0) if relevance == "positive" else np.abs(x) if relevance == "absolute" else x
    rows, cols = _edges(h, grid), _edges(w, grid)
    sums = np.add.reduceat(np.add.reduceat(x, rows, axis=1), cols, axis=2)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))
    pooled = (sums / counts).reshape(m, -1)
    total = np.abs(pooled).sum(axis=1, keepdims=True)
    return np.divide(pooled, total, out=np.zeros_like(pooled), where=total > 0)


# --------------------------------------------------------------------------------------------- spectral
@dataclass(frozen=True, eq=False)
class Spectral:
    """Spectral embedding of a k-nearest-neighbour graph.

    ``eigenvalues`` float ``(E,)`` of the normalised Laplacian, smallest first (the first is 0); ``vectors``
    ``(M, E)`` the matching eigenvectors; ``neighbours`` the graph's k; ``eigengap`` the number of clusters the
    largest gap among the first :data:`MAX_CLUSTERS` + 1 eigenvalues suggests.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    neighbours: int
    eigengap: int


def eigengap(eigenvalues: np.ndarray, max_k: int = MAX_CLUSTERS) -> int:
    """The number of clusters k ≤ ``max_k`` after which the sorted Laplacian eigenvalues jump the most
    (λ_{k+1} − λ_k largest; von Luxburg 2007). 1 means no cluster structure stands out."""
    ev = np.sort(np.asarray(eigenvalues, dtype=np.float64))[: max_k + 1]
    if len(ev) < 2:
        return 1
    return int(np.argmax(np.diff(ev))) + 1


def spectral_embedding(features: np.ndarray, neighbours: int | None = None, n_eig: int = MAX_CLUSTERS + 8,
                       max_k: int = MAX_CLUSTERS) -> Spectral:
    """Eigen-decomposition of the symmetric k-NN graph of ``features`` (rows), normalised Laplacian
    L = I − D^{-1/2} A D^{-1/2}: its ``n_eig`` smallest eigenvalues and eigenvectors."""
    m = len(features)
    k = int(min(neighbours or default_neighbours(m), m - 1))
    a = kneighbors_graph(features, k, mode="connectivity", include_self=False)
    a = a.maximum(a.T).tocsr()
    d = scipy.sparse.diags(1.0 / np.sqrt(np.asarray(a.sum(axis=1)).ravel()))
    s = d @ a @ d
    e = int(min(n_eig, m))
    if m <= DENSE_EIGEN:
        values, vectors = scipy.linalg.eigh(s.toarray(), subset_by_index=[m - e, m - 1])
    else:  # the largest eigenvalues of the sparse normalised adjacency: 1,000 maps in ~0.05 s instead of 0.5 s
        v0 = np.random.default_rng(0).random(m)
        values, vectors = scipy.sparse.linalg.eigsh(s, k=e, which="LA", v0=v0)
        order = np.argsort(values)
        values, vectors = values[order], vectors[:, order]
    values, vectors = 1.0 - values[::-1], vectors[:, ::-1]  # Laplacian eigenvalues, smallest first
    return Spectral(np.clip(values, 0.0, None), vectors, k, eigengap(values, max_k))


def kmeans_labels(spectral: Spectral, k: int, seed: int = 0) -> np.ndarray:
    """k-means on the first ``k`` eigenvectors, rows normalised (Ng, Jordan & Weiss 2002). Clusters are numbered by
    size, largest first. int64 ``(M,)``."""
    m = len(spectral.vectors)
    if k <= 1:
        return np.zeros(m, np.int64)
    u = spectral.vectors[:, :k]
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    raw = KMeans(k, n_init=10, random_state=seed).fit_predict(u)
    order = np.argsort(-np.bincount(raw, minlength=k), kind="stable")
    return np.argsort(order)[raw].astype(np.int64)


def tsne_perplexity(m: int) -> float:
    """The t-SNE perplexity for ``m`` points: :data:`TSNE_PERPLEXITY`, less for small sets (at least 2)."""
    return float(min(TSNE_PERPLEXITY, max(2.0, (m - 1) / 3.0 - 1.0)))


def tsne_of(spectral: Spectral, seed: int = 0, dims: int = MAX_CLUSTERS + 1) -> np.ndarray:
    """2-D t-SNE of the leading eigenvectors (CoRelAy's t-SNE on the spectral embedding). float ``(M, 2)``."""
    m = len(spectral.vectors)
    x = spectral.vectors[:, : min(dims, spectral.vectors.shape[1])]
    perplexity = tsne_perplexity(m)
    with threadpool_limits(1, user_api="openmp"):  # see xai_core.analysis.explore.embedding
        return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", max_iter=TSNE_ITER,
                    random_state=seed).fit_transform(np.asarray(x, np.float64))


@dataclass(frozen=True, eq=False)
class Strategies:
    """SpRAy of one class: every result that does not depend on the number of clusters, and the clusterings for
    every k from 1 to :data:`MAX_CLUSTERS` (so changing k recomputes nothing).

    ``features`` ``(M, grid²)`` pooled maps; ``xy`` ``(M, 2)`` t-SNE; ``labels[k]`` int64 ``(M,)`` cluster per image
    for k clusters; ``seconds``: time per step; ``seed``: the random state of k-means and t-SNE.
    """

    maps: ClassMaps
    grid: int
    relevance: str
    features: np.ndarray
    spectral: Spectral
    xy: np.ndarray
    labels: dict[int, np.ndarray]
    seconds: dict[str, float]
    seed: int = 0

    @property
    def suggested(self) -> int:
        """The eigengap's number of clusters."""
        return self.spectral.eigengap

    def clusters(self, k: int) -> np.ndarray:
        if k not in self.labels:
            raise InvalidParameterError(f"Choose between 1 and {max(self.labels)} clusters; got {k}.")
        return self.labels[k]


def find_strategies(maps: ClassMaps, grid: int = POOL_GRID, relevance: Relevance = "positive",
                    neighbours: int | None = None, max_k: int = MAX_CLUSTERS, seed: int = 0) -> Strategies:
    """SpRAy of a class's maps: pool, k-NN graph, eigen-decomposition, k-means for every k ≤ ``max_k``, t-SNE."""
    m = len(maps)
    if m < MIN_IMAGES:
        raise InvalidParameterError(f"Strategies need at least {MIN_IMAGES} maps; got {m}.")
    max_k = int(min(max_k, m - 1))
    t0 = time.perf_counter()
    features = pool_maps(maps.maps, grid, relevance)
    t1 = time.perf_counter()
    spectral = spectral_embedding(features, neighbours, max_k=max_k)
    t2 = time.perf_counter()
    with threadpool_limits(1):  # tiny problems: thread start-up and spin-waits cost more than they save (measured)
        labels = {k: kmeans_labels(spectral, k, seed) for k in range(1, max_k + 1)}
    t3 = time.perf_counter()
    xy = tsne_of(spectral, seed)
    t4 = time.perf_counter()
    return Strategies(maps, int(min(grid, *maps.maps.shape[1:])), relevance, features, spectral, xy, labels,
                      {"pool": t1 - t0, "spectral": t2 - t1, "kmeans": t3 - t2, "tsne": t4 - t3}, int(seed))


# --------------------------------------------------------------------------------------------- reading
REGIONS = (("top-left", "top", "top-right"), ("left", "centre", "right"), ("bottom-left", "bottom", "bottom-right"))


def where(mean_map: np.ndarray, share: float = 0.05) -> tuple[str, float]:
    """Where a map's positive relevance sits: the region (of a 3×3 division of the image) holding the most of it,
    and the share of the positive relevance in the hottest ``share`` of the pixels (1.0: all of it in 5 % of the
    image — a spot; ≈ 0.05: spread evenly)."""
    p = np.maximum(np.asarray(mean_map, np.float64), 0)
    total = p.sum()
    if total <= 0:
        return "nowhere (no positive relevance)", 0.0
    h, w = p.shape
    thirds = np.add.reduceat(np.add.reduceat(p, _edges(h, 3), axis=0), _edges(w, 3), axis=1)
    r, c = np.unravel_index(int(np.argmax(thirds)), (3, 3))
    top = np.sort(p.ravel())[::-1][: max(1, round(share * p.size))]
    return REGIONS[r][c], float(top.sum()) / float(total)


def image_frame(s: Strategies, k: int, ids: Sequence[str], tagged: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image: ``index``, ``id``, ``cluster``, ``x``, ``y`` (t-SNE), ``score`` (the class logit),
    ``predicted`` (class index) and, when the data set records it, ``tagged``."""
    cm = s.maps
    frame = pd.DataFrame({"index": cm.index, "id": [ids[i] for i in cm.index], "cluster": s.clusters(k),
                          "x": s.xy[:, 0], "y": s.xy[:, 1], "score": cm.scores, "predicted": cm.logits.argmax(1)})
    if tagged is not None:
        frame["tagged"] = np.asarray(tagged, bool)[cm.index]
    return frame


def cluster_means(s: Strategies, k: int) -> np.ndarray:
    """Mean map of each of the ``k`` clusters: float32 ``(k, h, w)``."""
    labels = s.clusters(k)
    return np.stack([s.maps.maps[labels == c].mean(axis=0) for c in range(k)]).astype(np.float32)


def cluster_table(s: Strategies, k: int) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``size``, ``share`` (of the class's images), ``where`` and
    ``concentration`` (:func:`where` of its mean map), ``score`` (mean class logit), ``right`` (share predicted as
    the class)."""
    labels, cm = s.clusters(k), s.maps
    rows = []
    for c, mean in enumerate(cluster_means(s, k)):
        sel = labels == c
        region, conc = where(mean)
        rows.append({"cluster": c, "size": int(sel.sum()), "share": float(sel.mean()), "where": region,
                     "concentration": conc, "score": float(cm.scores[sel].mean()),
                     "right": float((cm.logits[sel].argmax(1) == cm.class_index).mean())})
    return pd.DataFrame(rows)


def describe_cluster(row: Any, class_name: str) -> str:
    """One cluster in words, from a row of :func:`cluster_table` (the page's caption under its picture)."""
    return (f"**cluster {row['cluster']}** · {row['size']} images ({row['share']:.0%}) · relevance sits "
            f"**{row['where']}**, {row['concentration']:.0%} of it in the hottest 5 % of the image · mean score "
            f"{row['score']:.2f} · {row['right']:.0%} predicted {class_name}")


def tag_text(labels: np.ndarray, tagged: np.ndarray) -> str:
    """How the clusters match a data set's recorded tag (the bias demo), in words (:func:`agreement`)."""
    best, purity, recall = agreement(labels, tagged)
    return (f"This demo records which images carry the tag: cluster {best} holds {purity:.0%} tagged images and "
            f"{recall:.0%} of all tagged images of the class (purity / recall).")


def eigen_frame(s: Strategies) -> pd.DataFrame:
    """The Laplacian eigenvalues for the eigengap chart: ``k`` (1-based), ``eigenvalue``, ``gap`` (to the next one),
    ``chosen`` (the eigengap's k)."""
    ev = s.spectral.eigenvalues[: max(s.labels) + 1]
    gaps = np.append(np.diff(ev), np.nan)
    return pd.DataFrame({"k": np.arange(1, len(ev) + 1), "eigenvalue": ev, "gap": gaps,
                         "chosen": np.arange(1, len(ev) + 1) == s.suggested})


def agreement(labels: np.ndarray, truth: np.ndarray) -> tuple[int, float, float]:
    """The cluster that best matches a recorded binary property (e.g. the bias demo's tag): ``(cluster, purity,
    recall)`` of the cluster with the highest F1 against ``truth``."""
    truth = np.asarray(truth, bool)
    best, score, pr = 0, -1.0, (0.0, 0.0)
    for c in np.unique(labels):
        sel = labels == c
        hit = float((sel & truth).sum())
        purity, recall = hit / float(sel.sum()), hit / max(float(truth.sum()), 1.0)
        f1 = 0.0 if hit == 0 else 2 * purity * recall / (purity + recall)
        if f1 > score:
            best, score, pr = int(c), f1, (purity, recall)
    return best, pr[0], pr[1]
