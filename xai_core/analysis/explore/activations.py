"""What the channels of a layer respond to: channel maps of one image, maximally activating dataset images, and
the receptive field (input box) behind any position of a convolutional layer.

Ref. Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks, ECCV (top-k activating
images and their patches); Araujo et al. 2019, Computing Receptive Fields of Convolutional Neural Networks,
Distill (the jump / size / offset recurrences used by :func:`receptive_fields`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw

from xai_core.compat import keras as keras_compat
from xai_core.errors import InvalidParameterError
from xai_core.models.bundle import ModelBundle
from xai_core.viz.render import colorize, compose_grid, normalize, overlay

Strength = Literal["mean", "max"]
#: Channels drawn in one grid at most (the strongest ones); ImageNet layers have up to 2,048.
MAX_GRID_CHANNELS = 64


# ------------------------------------------------------------------------------------------- channel maps
def spatial_layers(bundle: ModelBundle) -> list[str]:
    """Names of the layers with an ``(H, W, C)`` output (not the input): the ones with channel maps."""
    return [info.name for info in bundle.layers if len(info.output_shape) == 3 and not info.is_input]


def channel_maps(bundle: ModelBundle, x: np.ndarray, layer: str) -> np.ndarray:
    """Every channel's activation map of ``layer`` for one model input.

    Parameters
    ----------
    x : float32 ``(1, H, W, C)`` model input (``bundle.preprocess`` of the raw image).

    Returns
    -------
    float32 ``(channels, h, w)`` — one ``session.run`` of ``bundle.layer_output(layer)``.
    """
    info = bundle.layer(layer)
    if len(info.output_shape) != 3:
        raise InvalidParameterError(f"Layer '{layer}' has output shape {info.output_shape}: channel maps need a "
                                    "convolutional (height × width × channels) layer.")
    with bundle.scope():
        tensor = bundle.layer_output(layer)
    out = bundle.run(tensor, np.asarray(x, np.float32)[:1])
    return np.moveaxis(out[0], -1, 0).astype(np.float32)


def channel_strength(maps: np.ndarray, by: Strength = "mean") -> np.ndarray:
    """float ``(channels,)``: the spatial mean or max of each map ``(channels, h, w)``."""
    if by not in ("mean", "max"):
        raise InvalidParameterError(f"Sort channels by 'mean' or 'max', not {by!r}.")
    flat = maps.reshape(len(maps), -1)
    return flat.mean(axis=1) if by == "mean" else flat.max(axis=1)


def strongest_channels(maps: np.ndarray, by: Strength = "mean") -> np.ndarray:
    """Channel numbers ``(channels,)`` from strongest to weakest (ties keep channel order)."""
    return np.argsort(-channel_strength(maps, by), kind="stable")


def activation_grid(maps: np.ndarray, by: Strength = "mean", max_channels: int = MAX_GRID_CHANNELS,
                    cols: int = 8, tile: int = 72, cmap: str = "viridis") -> tuple[np.ndarray, np.ndarray]:
    """One picture of the channel maps, strongest first, on one shared colour scale.

    All maps share one scale (the largest value of the shown maps), so a weak channel also *looks* weak;
    layers with negative values (e.g. after BatchNormalization) use a diverging map centred at 0.

    Parameters
    ----------
    maps : float ``(channels, h, w)``.
    by : ``"mean"`` or ``"max"`` — what "strongest" means.
    max_channels : only the strongest this many are drawn.

    Returns
    -------
    (uint8 ``(H, W, 3)`` grid, int ``(n,)`` the channels shown in grid order)
    """
    order = strongest_channels(maps, by)[:max_channels]
    strength = channel_strength(maps, by)
    signed = bool((maps < 0).any())
    norm = normalize(maps[order], signed=signed, shared=True)
    tiles = [colorize(m, signed, "bwr" if signed else cmap) for m in norm]
    caps = [f"#{c}: {strength[c]:.2g}" for c in order]
    cols = max(1, min(cols, len(tiles)))
    rows = [tiles[i:i + cols] for i in range(0, len(tiles), cols)]
    captions = [caps[i:i + cols] for i in range(0, len(caps), cols)]
    return compose_grid(rows, captions, tile=tile, pad=4, caption_lines=1, font_size=11), order


def resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one float map ``(h, w)`` to ``size = (H, W)``."""
    if m.shape == tuple(size):
        return m.astype(np.float32)
    return np.asarray(Image.fromarray(m.astype(np.float32)).resize(size[::-1], Image.Resampling.BILINEAR))


def strongest_overlays(image: np.ndarray, maps: np.ndarray, by: Strength = "mean", k: int = 4,
                       alpha: float = 0.7, cmap: str = "jet") -> list[tuple[int, float, np.ndarray]]:
    """The ``k`` strongest channel maps, each resized to the image and laid over it.

    Parameters
    ----------
    image : uint8 ``(H, W, 3)`` the model input as shown (``to_display``).
    maps : float ``(channels, h, w)``.

    Returns
    -------
    ``[(channel, strength, uint8 (H, W, 3) overlay), ...]`` strongest first; each map scaled to its own maximum.
    """
    strength = channel_strength(maps, by)
    h, w = image.shape[:2]
    out = []
    for c in strongest_channels(maps, by)[:k]:
        m = normalize(np.maximum(resize_map(maps[c], (h, w)), 0), signed=False)
        out.append((int(c), float(strength[c]), overlay(image, m, signed=False, cmap=cmap, alpha=alpha)))
    return out


# ------------------------------------------------------------------------------------ maximally activating
def top_k_images(channel_max: np.ndarray, index: np.ndarray, channel: int, k: int = 9
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` images whose ``channel`` responds most (ties: lower pass row first).

    Parameters
    ----------
    channel_max : float ``(M, C)`` per image the spatial max of each channel (``LayerStats.channel_max``).
    index : int ``(M,)`` dataset index of each pass row (``DatasetPass.index``).

    Returns
    -------
    (dataset indices ``(k,)``, activation values ``(k,)``, pass rows ``(k,)``), strongest first.
    """
    values = np.asarray(channel_max)
    if values.ndim != 2 or not 0 <= channel < values.shape[1]:
        raise InvalidParameterError(f"Channel {channel} is out of range: the layer has "
                                    f"{values.shape[1] if values.ndim == 2 else 0} channels.")
    column = np.nan_to_num(values[:, channel].astype(np.float64), nan=-np.inf)
    rows = np.argsort(-column, kind="stable")[:max(0, k)]
    return np.asarray(index)[rows], values[rows, channel], rows


def flat_position(flat: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(row, col)`` of a flat spatial position ``row * W + col`` in a layer of shape ``(H, W, C)``."""
    return int(flat) // int(shape[1]), int(flat) % int(shape[1])


@dataclass(frozen=True)
class ReceptiveField:
    """Input region seen by one position of a layer, per axis (rows, cols), in model-input pixels.

    Position ``i`` of the layer sees input pixels ``offset + i·jump`` … ``offset + i·jump + size − 1``
    (before clipping to the image; ``offset`` is negative where padding reaches outside the image).

    Attributes
    ----------
    exact : True when computed from the conv / pool chain; False when a layer of unknown geometry forced the
        stride-ratio approximation (jump = input size / layer size, size = jump, offset 0).
    """

    jump: tuple[int, int]
    size: tuple[int, int]
    offset: tuple[int, int]
    exact: bool = True

    def box(self, row: int, col: int, input_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` (half-open) of position (row, col), clipped to ``input_size = (H, W)``."""
        top = self.offset[0] + row * self.jump[0]
        left = self.offset[1] + col * self.jump[1]
        return (max(0, top), max(0, left), min(input_size[0], top + self.size[0]),
                min(input_size[1], left + self.size[1]))


_CONV = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Convolution2D"}
_POOL = {"MaxPooling2D", "AveragePooling2D", "MaxPool2D", "AvgPool2D"}


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _spatial(shape: Any) -> tuple[int, int] | None:
    dims = tuple(shape)
    if len(dims) != 4 or dims[1] is None or dims[2] is None:
        return None
    return int(dims[1]), int(dims[2])


def _window(cfg: dict, kind: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], str]:
    """(kernel extent incl. dilation, stride, dilation, padding) of a conv or pool layer config."""
    if kind in _POOL:
        k = _pair(cfg["pool_size"])
        s = _pair(cfg.get("strides") or cfg["pool_size"])
        d = (1, 1)
    else:
        k, s, d = _pair(cfg["kernel_size"]), _pair(cfg.get("strides", 1)), _pair(cfg.get("dilation_rate", 1))
    extent = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    return extent, s, d, str(cfg.get("padding", "valid")).lower()


def _step(rf: ReceptiveField, layer: Any, n_in: tuple[int, int], n_out: tuple[int, int]) -> ReceptiveField:
    """Receptive field after ``layer`` (input spatial size ``n_in``, output ``n_out``)."""
    kind = type(layer).__name__
    cfg = layer.get_config()
    if kind in _CONV or kind in _POOL:
        extent, s, _, padding = _window(cfg, kind)
        pads = []
        for a in range(2):
            if padding == "same":
                total = max((math.ceil(n_in[a] / s[a]) - 1) * s[a] + extent[a] - n_in[a], 0)
                pads.append(total // 2)
            else:
                pads.append(0)
        return ReceptiveField(
            jump=(rf.jump[0] * s[0], rf.jump[1] * s[1]),
            size=(rf.size[0] + (extent[0] - 1) * rf.jump[0], rf.size[1] + (extent[1] - 1) * rf.jump[1]),
            offset=(rf.offset[0] - pads[0] * rf.jump[0], rf.offset[1] - pads[1] * rf.jump[1]), exact=rf.exact)
    if kind == "ZeroPadding2D":
        (t, _), (left, _) = (tuple(p) for p in cfg["padding"])
        return ReceptiveField(rf.jump, rf.size, (rf.offset[0] - t * rf.jump[0], rf.offset[1] - left * rf.jump[1]),
                              rf.exact)
    if kind == "Cropping2D":
        (t, _), (left, _) = (tuple(p) for p in cfg["cropping"])
        return ReceptiveField(rf.jump, rf.size, (rf.offset[0] + t * rf.jump[0], rf.offset[1] + left * rf.jump[1]),
                              rf.exact)
    if n_in == n_out:  # element-wise layers: activations, BatchNorm, dropout, rescaling, ...
        return rf
    ratio = (max(1, round(n_in[0] / n_out[0])), max(1, round(n_in[1] / n_out[1])))
    jump = (rf.jump[0] * ratio[0], rf.jump[1] * ratio[1])
    return ReceptiveField(jump, (rf.size[0] + jump[0] - rf.jump[0], rf.size[1] + jump[1] - rf.jump[1]), rf.offset,
                          exact=False)


def _merge(fields: list[ReceptiveField]) -> ReceptiveField:
    """Union of the regions of several branches (Add, Concatenate): the box covering all of them."""
    if len(fields) == 1:
        return fields[0]
    jump = (max(f.jump[0] for f in fields), max(f.jump[1] for f in fields))
    lo = (min(f.offset[0] for f in fields), min(f.offset[1] for f in fields))
    hi = (max(f.offset[0] + f.size[0] for f in fields), max(f.offset[1] + f.size[1] for f in fields))
    exact = all(f.exact for f in fields) and all(f.jump == fields[0].jump for f in fields)
    return ReceptiveField(jump, (hi[0] - lo[0], hi[1] - lo[1]), lo, exact)


def receptive_fields(model: Any) -> dict[str, ReceptiveField]:
    """Receptive field of every spatial layer of a functional Keras model, walking its graph from the input.

    Conv (incl. depthwise/separable, dilation), pooling, zero-padding and cropping layers are exact, with
    TensorFlow's "same" padding (extra pad at the bottom/right); element-wise layers keep the field; branches
    that meet (Add, Concatenate) take the union. Any other layer that changes the spatial size is approximated
    by the stride ratio (``exact=False``). The result is the theoretical field: every pixel outside the box is
    irrelevant to the unit; a dilated kernel at the image border can skip a few rows inside it (tested).
    """
    fields: dict[int, ReceptiveField] = {}
    sizes: dict[int, tuple[int, int] | None] = {}
    out: dict[str, ReceptiveField] = {}
    for node in keras_compat.nodes_in_order(model):
        size = _spatial(node.outputs[0].shape if isinstance(node.outputs, (list, tuple)) else node.outputs.shape)
        sizes[id(node)] = size
        parents = [p for p in node.parent_nodes if fields.get(id(p)) is not None]
        if not node.parent_nodes:
            rf = ReceptiveField((1, 1), (1, 1), (0, 0)) if size else None
        elif size is None or not parents:
            rf = None
        else:
            rf = _merge([fields[id(p)] for p in parents])
            n_in = sizes[id(parents[0])]
            rf = _step(rf, node.layer, n_in, size) if n_in else None
        if rf is not None:  # a node without a field is left out: ``fields.get`` gives None for it
            fields[id(node)] = rf
            out[node.layer.name] = rf
    return out


def receptive_field(bundle: ModelBundle, layer: str) -> ReceptiveField:
    """Receptive field of a spatial ``layer`` of ``bundle`` (computed once per bundle).

    Falls back to the stride-ratio approximation (``exact=False``) when the graph walk does not reach the layer.
    """
    info = bundle.layer(layer)
    if len(info.output_shape) != 3:
        raise InvalidParameterError(f"Layer '{layer}' has no spatial output, so it has no receptive-field box.")
    fields = bundle.cached("explore.receptive_fields", lambda: receptive_fields(bundle.model))
    if layer in fields:
        return fields[layer]
    h, w = bundle.input_size
    jump = (max(1, round(h / info.output_shape[0])), max(1, round(w / info.output_shape[1])))
    return ReceptiveField(jump, jump, (0, 0), exact=False)


def max_location_box(bundle: ModelBundle, layer: str, flat: int) -> tuple[int, int, int, int]:
    """Input box ``(top, left, bottom, right)`` behind flat position ``flat`` (``LayerStats.channel_argmax``)."""
    row, col = flat_position(flat, bundle.layer(layer).output_shape)
    return receptive_field(bundle, layer).box(row, col, bundle.input_size)


def patch_card(image: np.ndarray, box: tuple[int, int, int, int] | None, side: int = 112) -> np.ndarray:
    """uint8 RGB picture: the image (``side`` pixels) with ``box`` outlined, and beside it the box's patch enlarged
    to the same height; just the image when ``box`` is None (dense layers)."""
    from xai_core.viz.render import fit_tile

    img = np.asarray(image, np.uint8)
    if box is None:
        return fit_tile(img, side)
    scale = side / max(img.shape[:2])
    factor = max(1, int(np.ceil(scale)))
    big = np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)
    top, left, bottom, right = (int(v * factor) for v in box)
    outlined = fit_tile(draw_box(big, (top, left, bottom, right), width=max(1, factor // 2)), side)
    gap = np.full((side, 6, 3), 255, np.uint8)
    return np.concatenate([outlined, gap, fit_tile(crop(img, box), side)], axis=1)


def neuron_at(shape: tuple[int, ...], flat: int, channel: int) -> int:
    """Flat neuron index (``bundle.layer_tensor`` order) of ``channel`` at flat spatial position ``flat``."""
    if len(shape) == 1:
        return int(channel)
    row, col = flat_position(flat, shape)
    return int(np.ravel_multi_index((row, col, channel), shape))


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``image`` ``(H, W, C)`` inside ``box`` (half-open ``(top, left, bottom, right)``)."""
    top, left, bottom, right = box
    return np.asarray(image)[top:bottom, left:right]


def draw_box(image: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int] = (255, 40, 40),
             width: int = 1) -> np.ndarray:
    """uint8 RGB copy of ``image`` with the outline of ``box`` drawn on it."""
    img = np.asarray(image, np.uint8)
    if img.ndim == 2 or img.shape[-1] == 1:
        img = np.repeat(img.reshape(*img.shape[:2], 1), 3, axis=-1)
    pil = Image.fromarray(img)
    top, left, bottom, right = box
    ImageDraw.Draw(pil).rectangle((left, top, right - 1, bottom - 1), outline=color, width=width)
    return np.asarray(pil)
