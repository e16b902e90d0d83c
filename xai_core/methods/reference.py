"""Reference family: the model input itself and seeded random noise, the baselines every explanation should beat.

Ref. Alber et al. (2019), *iNNvestigate neural networks!*, JMLR 20(93); Hooker et al. (2019), *A benchmark for
interpretability methods in deep neural networks*, NeurIPS (random attribution as the floor).
"""

from __future__ import annotations

import numpy as np

from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.methods.gradient import image_rng
from xai_core.models.bundle import ModelBundle


def _input(bundle: ModelBundle, x: np.ndarray, selection: Selection) -> np.ndarray:
    """The model input itself: what iNNvestigate's "input" analyzer returns, without building an analyzer (that
    took 23 s on an uploaded ResNet50 for a map that is the input; tests/methods/test_methods.py compares both)."""
    return np.array(x, dtype=np.float32, copy=True)


def _random(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, seed: int) -> np.ndarray:
    """Reproducible Gaussian noise maps. (iNNvestigate's "random" adds unseeded noise to the input, so the same
    request gives a different map each time; a baseline must be reproducible.)"""
    return np.stack([image_rng(img, seed).normal(size=img.shape) for img in x]).astype(np.float32)


_SPECS = [
    MethodSpec(
        id="input", label="Input", family="Reference",
        summary="The model input itself, channel-summed: a baseline that every real explanation should beat.",
        caveat="Explains nothing about the model; use it to spot maps that merely copy the image.",
        reference="Alber et al. 2019, iNNvestigate neural networks!, JMLR 20(93).",
        run=_input, innvestigate_name="input",
    ),
    MethodSpec(
        id="random", label="Random", family="Reference",
        summary="Random noise: the floor against which explanation quality is judged.",
        caveat="Meaningless by design; any method that scores like it on faithfulness checks is suspect.",
        reference="Alber et al. 2019, iNNvestigate neural networks!, JMLR 20(93).",
        params=(Param("seed", "int", 0, "Random seed", "Fixes the noise so maps are reproducible.",
                      min=0, max=2**31 - 1, step=1, builds=False),),
        run=_random,
    ),
]

for _spec in _SPECS:
    register(_spec)
