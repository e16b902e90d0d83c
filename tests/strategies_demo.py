"""SpRAy of the bias demo (tagged shapes and their Clever Hans model) for tests: the analysis a class gets on the page,
without Streamlit (imported by conftest.py's session fixtures and the strategies tests)."""

from __future__ import annotations

import numpy as np

from xai_core.analysis import strategies as spray
from xai_core.data.dataset import Dataset
from xai_core.data.demo import SHAPE_CLASSES, TAG_CLASS
from xai_core.models.bundle import ModelBundle

CIRCLE = SHAPE_CLASSES.index(TAG_CLASS)


def analyse(bundle: ModelBundle, ds: Dataset, c: int, method: str = "lrp.epsilon") -> spray.Strategies:
    """Strategies of class ``c`` of ``ds`` (its images by label), as Suggest computes them."""
    x = np.stack([ds.reader(i) for i in range(len(ds))])
    logits = bundle.logits(bundle.preprocess(x))
    index, how = spray.class_members(ds.labels, logits.argmax(1), c)
    assert how == "label"
    return spray.find_strategies(spray.class_maps(bundle, ds, c, index, logits[index], method, batch_size=32))
