"""One batched pass of a model over a data set: class scores plus compact per-layer activation statistics.

Everything the data set pages plot comes from this pass, so it runs once per (model, layers, data set): each
batch is fed once, and the TF graph reduces every requested layer to a few numbers per image and channel
before anything is copied to numpy, so a 10,000-image folder costs kilobytes per image, not the full
activations (those are kept only for layers small enough, see :data:`FULL_LIMIT`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode
from xai_core.errors import DatasetError
from xai_core.models.bundle import DEFAULT_BATCH_SIZE, ModelBundle

#: Flattened activations are kept when ``images × units`` stays below this (64 MB of float32).
FULL_LIMIT = 16_000_000


@dataclass
class LayerStats:
    """Per-image statistics of one layer's output.

    Attributes
    ----------
    layer : layer name.
    shape : output shape without the batch axis, e.g. ``(16, 16, 32)`` or ``(64,)``.
    mean : float32 ``(M,)`` mean activation over the whole layer.
    channel_mean, channel_max : float32 ``(M, C)`` spatial mean / max per channel (last axis); for a dense
        layer both are the unit values themselves.
    channel_argmax : int32 ``(M, C)`` flat spatial position ``row * W + col`` of each channel's maximum
        (0 for dense layers).
    full : float32 ``(M, units)`` flattened activations (the order of :meth:`ModelBundle.layer_tensor`), or
        ``None`` when the layer is too large to keep for this many images.
    """

    layer: str
    shape: tuple[int, ...]
    mean: np.ndarray
    channel_mean: np.ndarray
    channel_max: np.ndarray
    channel_argmax: np.ndarray
    full: np.ndarray | None

    @property
    def channels(self) -> int:
        return int(self.shape[-1])

    @property
    def spatial(self) -> bool:
        return len(self.shape) > 1

    def neuron(self, index: int) -> np.ndarray | None:
        """Values of flat neuron ``index`` over all images, or ``None`` when the full activations were not kept."""
        if self.full is not None:
            return self.full[:, index]
        if not self.spatial:
            return self.channel_mean[:, index]
        return None


@dataclass
class DatasetPass:
    """Class scores and layer statistics of one model over one data set.

    ``index[j]`` is the data set position of row ``j`` of every array; images that failed to decode are
    absent and listed in ``failed``.
    """

    model: str
    dataset_key: str
    index: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    layers: dict[str, LayerStats] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    def predicted_by_position(self, size: int) -> np.ndarray:
        """Predicted class per data set position ``0 … size − 1`` (int64; −1 where the image was unreadable)."""
        out = np.full(size, -1, np.int64)
        out[self.index] = self.predicted
        return out

    def __len__(self) -> int:
        return len(self.index)


def _reductions(bundle: ModelBundle, layer: str) -> dict[str, tf.Tensor]:
    """TF ops reducing ``layer``'s output per image (built once per bundle and layer)."""

    def build() -> dict[str, tf.Tensor]:
        t = bundle.layer_output(layer) if not bundle.is_output_layer(layer) else bundle.model.output
        if len(t.shape) == 2:  # dense: the values are their own channel statistics (fetched once)
            return {"mean": tf.reduce_mean(t, axis=1), "channel_mean": t}
        c = int(t.shape[-1])
        positions = int(np.prod(t.shape[1:-1]))
        flat = tf.reshape(t, (-1, positions, c))
        return {
            "mean": tf.reduce_mean(flat, axis=[1, 2]),
            "channel_mean": tf.reduce_mean(flat, axis=1),
            "channel_max": tf.reduce_max(flat, axis=1),
            "channel_argmax": tf.argmax(flat, axis=1, output_type=tf.int32),
            "full": tf.reshape(t, (-1, positions * c)),
        }

    return bundle.cached(("stats_reductions", layer), build)


def dataset_pass(
    bundle: ModelBundle,
    dataset: Dataset,
    layers: Sequence[str] = (),
    fit: FitMode = "center-crop",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    indices: Sequence[int] | None = None,
) -> DatasetPass:
    """Run ``bundle`` over ``dataset`` once, in batches: logits, probabilities and statistics of ``layers``.

    Parameters
    ----------
    layers : layer names whose activations are summarised (see :class:`LayerStats`).
    fit : how images of another size are fitted to the model input.
    progress : ``progress(done, total)`` after each batch.
    indices : a subset of the data set (default: all of it).

    Raises
    ------
    DatasetError
        If no image of the set could be read.
    """
    infos = [bundle.layer(name) for name in layers]  # validates the names
    total = len(dataset) if indices is None else len(indices)
    keep_full = {i.name: total * i.units <= FULL_LIMIT for i in infos}
    with bundle.scope():
        ops = {i.name: _reductions(bundle, i.name) for i in infos}
    fetch: dict[str, tf.Tensor] = {"logits": bundle.model.output}
    for name, red in ops.items():
        for stat, tensor in red.items():
            if stat != "full" or keep_full[name]:
                fetch[f"{name}\x00{stat}"] = tensor
    keys = list(fetch)
    tensors = [fetch[k] for k in keys]
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    index: list[np.ndarray] = []
    before = set(dataset.failures)
    done = 0
    for batch in dataset.batches(bundle.input_size, bundle.channels, fit, batch_size, indices):
        x = bundle.preprocess(batch.images)
        with bundle.scope():
            values = bundle.session.run(tensors, feed_dict={bundle.model.input: x})
        for k, v in zip(keys, values):
            chunks[k].append(v)
        index.append(batch.indices)
        done += len(batch.indices)
        if progress:
            progress(min(done + len(dataset.failures) - len(before), total), total)
    failed = [(i, r) for i, r in dataset.failures.items() if i not in before]
    if not index:
        raise DatasetError(f"None of the {total} images of '{dataset.name}' could be read"
                           + (f" (e.g. {failed[0][0]}: {failed[0][1]})." if failed else "."))
    cat = {k: np.concatenate(v) for k, v in chunks.items()}
    logits = cat["logits"].astype(np.float32)

    def get(layer: str, stat: str) -> np.ndarray | None:
        return cat.get(f"{layer}\x00{stat}")

    def need(layer: str, stat: str) -> np.ndarray:
        value = get(layer, stat)
        assert value is not None  # _reductions computes it for every layer (channel_argmax: every spatial one)
        return value

    stats = {}
    for info in infos:
        channel_mean = need(info.name, "channel_mean").astype(np.float32)
        channel_max = get(info.name, "channel_max")  # None for a dense layer
        full = channel_mean if channel_max is None else get(info.name, "full")
        stats[info.name] = LayerStats(
            layer=info.name,
            shape=tuple(info.output_shape),
            mean=need(info.name, "mean").astype(np.float32),
            channel_mean=channel_mean,
            channel_max=channel_mean if channel_max is None else channel_max.astype(np.float32),
            channel_argmax=(np.zeros(channel_mean.shape, np.int32) if channel_max is None
                            else need(info.name, "channel_argmax").astype(np.int32)),
            full=None if full is None else full.astype(np.float32),
        )
    return DatasetPass(model=bundle.name, dataset_key=dataset.key, index=np.concatenate(index),
                       logits=logits, probs=bundle.probabilities(logits), layers=stats, failed=failed)
