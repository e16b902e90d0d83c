"""Deep dream / activation maximisation: synthesise an input that excites a chosen channel or class.

Gradient ascent on the model input (graph mode: the objective and its gradient are built once per
(model, layer, kind) with a placeholder for the channel or class, so changing the channel never grows the
graph). Regularisers from the feature-visualisation literature keep the picture natural-looking instead of
adversarial noise: random jitter (the image is rolled by a few pixels before each step), a Gaussian blur every
few steps, and a coarse-to-fine schedule of octaves (early steps optimise a low-resolution image that is
upsampled to the model size, later octaves add finer detail). Pixels stay in the model's valid input range.

Ref. Mordvintsev, Olah & Tyka 2015, Inceptionism: Going Deeper into Neural Networks (Google Research blog);
Olah, Mordvintsev & Schubert 2017, Feature Visualization, Distill (doi:10.23915/distill.00007).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import tensorflow as tf
from PIL import Image
from scipy.ndimage import gaussian_filter

from xai_core.errors import InvalidParameterError
from xai_core.models.bundle import ModelBundle

Kind = Literal["channel", "class"]
#: Iteration cap (a request for more is refused with a readable message).
MAX_STEPS = 1000


@dataclass(frozen=True)
class DreamResult:
    """A synthesised input.

    Attributes
    ----------
    image : uint8 ``(H, W, C)`` at the model's input size (raw pixels, ready to save as PNG).
    x : float32 ``(1, H, W, C)`` the same image in model-input space.
    start, end : objective (channel mean or logit) of the start image and of the result, measured without
        jitter.
    history : objective after each step (measured on the jittered input the step used).
    """

    image: np.ndarray
    x: np.ndarray
    start: float
    end: float
    history: list[float] = field(default_factory=list)

    @property
    def factor(self) -> float:
        """``end / start`` (inf when the start was not positive and the end is)."""
        if self.start > 0:
            return self.end / self.start
        return float("inf") if self.end > 0 else float("nan")


_RELU_OPS = ("Relu", "Relu6")


def _channel_mean(t: Any, idx: Any) -> Any:
    """Per image: mean over the spatial axes of channel ``idx`` of ``t`` (the unit itself for a 2-D ``t``)."""
    picked = tf.gather(t, idx, axis=-1)
    return tf.reduce_mean(picked, axis=list(range(1, len(t.shape) - 1))) if len(t.shape) > 2 else picked


def objective_tensors(bundle: ModelBundle, layer: str | None, kind: Kind) -> tuple[Any, Any, Any, Any]:
    """``(index placeholder, objective (N,), d objective / d input, d pre-activation / d input or None)``.

    Built once per (bundle, layer, kind); the index placeholder selects the channel or class at run time.

    ``kind="channel"``: spatial mean of channel ``index`` of ``layer`` (a unit for a dense layer). When the layer
    ends in a ReLU, the last tensor is the gradient of the channel's *pre-activation* mean: a ReLU unit that is
    off everywhere (common on a grey start) has zero gradient, and the pre-activation one switches it on.
    ``kind="class"``: logit ``index`` (``layer`` is ignored).
    """
    if kind not in ("channel", "class"):
        raise InvalidParameterError(f"Maximise a 'channel' or a 'class', not {kind!r}.")
    key_layer = None if kind == "class" else layer

    def build() -> tuple[Any, Any, Any, Any]:
        idx = tf.compat.v1.placeholder(tf.int32, (), name="xai_dream_index")
        pre = None
        if kind == "class":
            obj = tf.gather(bundle.model.output, idx, axis=1)
        else:
            t = bundle.layer_output(layer)
            obj = _channel_mean(t, idx)
            if t.op.type in _RELU_OPS:
                pre = _channel_mean(t.op.inputs[0], idx)
        grad = tf.gradients(tf.reduce_sum(obj), bundle.model.input)[0]
        if grad is None:
            raise InvalidParameterError(f"The objective of layer '{layer}' does not depend on the input.")
        pre_grad = tf.gradients(tf.reduce_sum(pre), bundle.model.input)[0] if pre is not None else None
        return idx, obj, grad, pre_grad

    return bundle.cached(("explore.dream", key_layer, kind), build)


def _units(bundle: ModelBundle, layer: str | None, kind: Kind) -> int:
    if kind == "class":
        return bundle.num_classes
    if layer is None:
        raise InvalidParameterError("Choose a layer whose channel to maximise.")
    info = bundle.layer(layer)
    if info.is_input or not info.output_shape:
        raise InvalidParameterError(f"Layer '{layer}' cannot be maximised: choose a layer after the input.")
    return int(info.output_shape[-1])


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(H, W, C)`` float to ``size = (h, w)``."""
    if x.shape[:2] == tuple(size):
        return x
    channels = [Image.fromarray(x[..., c].astype(np.float32)) for c in range(x.shape[-1])]
    return np.stack([np.asarray(im.resize(size[::-1], Image.Resampling.BILINEAR)) for im in channels],
                    axis=-1).astype(np.float32)


def affine_inverse(bundle: ModelBundle) -> Callable[[np.ndarray], np.ndarray]:
    """Model input → raw pixels for a per-pixel affine preprocessing (all built-in ones are); checked numerically.

    Raises :class:`InvalidParameterError` when the model's preprocessing is not affine.
    """
    c = bundle.channels
    base = bundle.preprocessing(np.zeros((1, 1, 1, c), np.float32)).reshape(c)
    cols = [bundle.preprocessing(np.eye(c, dtype=np.float32)[k].reshape(1, 1, 1, c)).reshape(c) - base
            for k in range(c)]
    a = np.stack(cols, axis=1).astype(np.float64)  # model = a @ raw + base
    probe = np.random.default_rng(0).uniform(0, 255, (1, 2, 2, c)).astype(np.float32)
    if np.linalg.matrix_rank(a) < c or not np.allclose(
            bundle.preprocessing(probe), probe @ a.T + base, rtol=1e-4, atol=1e-3):
        raise InvalidParameterError("This model's preprocessing is not an affine map of the pixels, so the "
                                    "synthesised input cannot be turned back into an image.")
    inv = np.linalg.inv(a)
    return lambda x: (np.asarray(x, np.float64) - base) @ inv.T


def dream(bundle: ModelBundle, index: int, layer: str | None = None, kind: Kind = "channel",
          start: np.ndarray | None = None, steps: int = 96, step_size: float = 0.02, octaves: int = 3,
          octave_scale: float = 1.6, jitter: int = 2, blur_every: int = 4, blur_sigma: float = 0.5,
          noise: float = 0.02, seed: int = 0, progress: Callable[[int, int], None] | None = None) -> DreamResult:
    """Gradient ascent on the input to maximise channel ``index`` of ``layer`` (or logit ``index``).

    Parameters
    ----------
    index : channel (``kind="channel"``) or class (``kind="class"``).
    start : raw uint8/float ``(H, W, C)`` image at the model size to start from; ``None`` = mid-grey plus
        Gaussian noise of ``noise`` × the input range.
    steps : total gradient steps over all octaves (1 … :data:`MAX_STEPS`).
    step_size : each step moves ``step_size × input range`` along the gradient normalised to mean |g| = 1.
    octaves, octave_scale : coarse-to-fine schedule: octave ``o`` optimises an image ``octave_scale^(octaves−1−o)``
        times smaller than the model input, upsampled bilinearly.
    jitter : the input is rolled by up to this many pixels (random, seeded) before each step.
    blur_every, blur_sigma : Gaussian blur (sigma in pixels of the octave's image) every this many steps (0 = off).
    progress : ``progress(done, total)`` after each step.

    Returns
    -------
    DreamResult (uint8 image, objective at the start and at the end)
    """
    n_units = _units(bundle, layer, kind)
    if not 0 <= index < n_units:
        raise InvalidParameterError(f"{'Class' if kind == 'class' else 'Channel'} {index} is out of range: "
                                    f"choose 0 … {n_units - 1}.")
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidParameterError(f"Choose between 1 and {MAX_STEPS} iterations (got {steps}).")
    octaves = max(1, int(octaves))
    idx, obj_t, grad_t, pre_t = objective_tensors(bundle, layer, kind)
    lo, hi = bundle.input_low_high
    span = hi - lo
    h, w, c = bundle.input_shape
    rng = np.random.default_rng(seed)
    if start is None:
        x = (lo + hi) / 2 + noise * span * rng.standard_normal((h, w, c))
    else:
        x = bundle.preprocess(np.asarray(start, np.float32)[None])[0]
    x = np.clip(np.asarray(x, np.float32), lo, hi)

    def run(inp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {idx: np.int32(index)}
        value, grad = bundle.run([obj_t, grad_t], inp[None].astype(np.float32), feed=feed)
        if pre_t is not None and not grad.any():  # the unit is off everywhere: wake it up through its input
            grad = bundle.run(pre_t, inp[None].astype(np.float32), feed=feed)
        return value, grad

    first = float(run(x)[0][0])
    history: list[float] = []
    per_octave = [steps // octaves + (o < steps % octaves) for o in range(octaves)]
    done = 0
    for o, n_steps in enumerate(per_octave):
        scale = octave_scale ** (octaves - 1 - o)
        size = (max(2, round(h / scale)), max(2, round(w / scale)))
        z = _resize(x, size)
        for step in range(n_steps):
            up = _resize(z, (h, w))
            dy, dx = (rng.integers(-jitter, jitter + 1, 2) if jitter > 0 else (0, 0))
            value, grad = run(np.roll(up, (dy, dx), axis=(0, 1)))
            g = _resize(np.roll(grad[0], (-dy, -dx), axis=(0, 1)), size)
            z = z + step_size * span * g / (np.abs(g).mean() + 1e-12)
            if blur_every and blur_sigma > 0 and (step + 1) % blur_every == 0:
                z = gaussian_filter(z, sigma=(blur_sigma, blur_sigma, 0), mode="wrap")
            z = np.clip(z, lo, hi).astype(np.float32)
            history.append(float(value[0]))
            done += 1
            if progress is not None:
                progress(done, steps)
        x = _resize(z, (h, w))
    end = float(run(x)[0][0])
    image = np.clip(np.rint(affine_inverse(bundle)(x)), 0, 255).astype(np.uint8)
    return DreamResult(image=image, x=x[None], start=first, end=end, history=history)
