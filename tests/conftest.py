"""Shared fixtures: tiny models built in-process, and the bias demo's strategies (session scope — building is the slow
part)."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np
import pytest
from strategies_demo import CIRCLE, analyse
from tiny_models import TINY_SHAPE, make_bundle, tiny_cnn

from xai_core import runtime
from xai_core.analysis.strategies import Strategies
from xai_core.data.dataset import Dataset, demo_dataset
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import load_demo_model

runtime.install()

# The test process holds dozens of models at once (several GB): the server's memory budget is off here, and
# tested on its own ledgers (tests/models/test_memory.py).
os.environ.setdefault("XAI_LENS_MEMORY_BUDGET_MB", "0")


@pytest.fixture(scope="session")
def tiny() -> ModelBundle:
    return make_bundle(tiny_cnn, "tiny")


@pytest.fixture(scope="session")
def tiny_nobias() -> ModelBundle:
    return make_bundle(lambda: tiny_cnn(bias=False, seed=1), "tiny-nobias")


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """Seven 16×16 RGB images, pixels in [0, 255]."""
    return (np.random.default_rng(42).random((7, *TINY_SHAPE)) * 255).astype(np.float32)


@pytest.fixture(scope="session")
def biased() -> ModelBundle:
    """The bias demo's model (tagged_shapes_cnn, a Clever Hans predictor)."""
    bundle = load_demo_model("tagged_shapes_cnn")
    yield bundle
    bundle.close()


@pytest.fixture(scope="session")
def tagged_test() -> Dataset:
    return demo_dataset("tagged_shapes", "test")


@pytest.fixture(scope="session")
def circle(biased, tagged_test) -> Strategies:
    """Strategies of the circle class (the tagged one) of the held-out tagged shapes, LRP-ε, the page's defaults."""
    return analyse(biased, tagged_test, CIRCLE)
