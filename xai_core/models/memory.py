"""A memory budget for the models one server keeps loaded (pure accounting: no Streamlit, no TensorFlow).

Streamlit Community Cloud gives an app 0.7–2.7 GB; past that it dies until rebooted. Measured (RSS of one server
process, TensorFlow 2.21 / tf_keras / numpy 2, Python 3.12): TensorFlow imported and :func:`xai_core.runtime.install`
done 0.67 GB (0.53 GB on TensorFlow 2.14). So before a model loads or an analyzer builds, its cost is estimated from
its weights, and the least recently used models are unloaded (their session closed, their graph dropped) until it
fits; a model that alone exceeds the budget is refused with a clear message.

Estimates, fitted to the peak RSS growth measured on uploaded ``weights=None`` networks at 224×224
(``bench/bench_memory.py --costs``; ``w`` = bytes of the model file ≈ its float32 weights): loading peaks at about
3.6 × ``w`` + 0.1 GB (VGG16: 528 MB file, +1.90 GB; ResNet50: 98 MB, +0.39 GB; DenseNet121: 32 MB, +0.22 GB: the
upload, the weights file read from it, the weights read in 64 MB chunks and the variables), and settles at about
1 × ``w`` + 0.1 GB; building a relevance analyzer peaks at about 0.1 × ``w`` plus 0.5 GB at 224×224 pixels, scaled by
the input's area (ResNet50 LRP-ε +0.41 GB, VGG16 +0.43 GB, DenseNet121 +0.48 GB; the demo models' few MB). TensorFlow
and glibc keep some of what a closed session frees, so the ledger also reads the real RSS.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from xai_core.errors import ModelLoadError

DEFAULT_BUDGET_BYTES = int(2.2 * 1024**3)
LOAD_FACTOR = 3.6
BUILD_FACTOR = 0.1
BUILD_BYTES_224 = 512 * 1024**2  # an analyzer graph's own memory at 224×224 input
GRAPH_BYTES = 100 * 1024**2
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class MemoryBudgetError(ModelLoadError):
    """A model (with what it needs to run) does not fit the memory budget even with every other model unloaded."""


def budget_bytes(environ: dict[str, str] | None = None) -> int:
    """The budget: ``$XAI_LENS_MEMORY_BUDGET_MB`` (``0`` = no budget) or :data:`DEFAULT_BUDGET_BYTES`."""
    value = (os.environ if environ is None else environ).get("XAI_LENS_MEMORY_BUDGET_MB")
    if not value:
        return DEFAULT_BUDGET_BYTES
    try:
        mb = float(value)
    except ValueError:
        return DEFAULT_BUDGET_BYTES
    return 0 if mb <= 0 else int(mb * 1024**2)


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm`` (0 where there is no /proc)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise), after unloading."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def load_cost(weight_bytes: int) -> int:
    """Estimated RSS growth of loading a model with ``weight_bytes`` of weights."""
    return int(LOAD_FACTOR * weight_bytes) + GRAPH_BYTES


def build_cost(weight_bytes: int, pixels: int = 224 * 224) -> int:
    """Estimated RSS growth of building one analyzer for such a model with ``pixels`` = H × W of its input."""
    return int(BUILD_FACTOR * weight_bytes + BUILD_BYTES_224 * min(4.0, pixels / (224 * 224))) + GRAPH_BYTES // 4


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB"


@dataclass
class Ledger:
    """What each loaded model is estimated to hold, in least-recently-used order, under one budget.

    ``rss`` gives the process's resident memory; the memory in use is taken as the larger of it and the baseline
    (RSS when the ledger started) plus every estimate, so a wrong estimate is corrected by the real RSS.
    """

    budget: int
    rss: Callable[[], int] = rss_bytes
    baseline: int = -1
    entries: OrderedDict[Hashable, int] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.baseline < 0:
            self.baseline = self.rss()

    def in_use(self) -> int:
        return max(self.rss(), self.baseline + sum(self.entries.values()))

    def touch(self, key: Hashable) -> None:
        """``key`` was used: it is unloaded last."""
        if key in self.entries:
            self.entries.move_to_end(key)

    def charge(self, key: Hashable, nbytes: int) -> None:
        """Add ``nbytes`` to ``key``'s estimate (a model loaded, an analyzer built) and mark it used."""
        self.entries[key] = self.entries.get(key, 0) + int(nbytes)
        self.entries.move_to_end(key)

    def forget(self, key: Hashable) -> None:
        self.entries.pop(key, None)

    def plan(self, key: Hashable, need: int, what: str = "the model",
             protect: frozenset[Hashable] = frozenset()) -> list[Hashable]:
        """The models to unload, least recently used first, so that ``need`` more bytes for ``key`` fit (``key``
        itself is never unloaded). Raises :class:`MemoryBudgetError` when ``key`` is not loaded yet and its load
        alone could not fit. (A loaded model's own charge is its measured RSS growth, which includes transient
        memory of the load; it is never a reason to refuse one of its explanations.) Models in ``protect`` (in
        use by a page run in progress) are not unloaded: the budget is exceeded rather than thrash."""
        if self.budget <= 0:
            return []
        if key not in self.entries and self.baseline + need > self.budget:
            raise MemoryBudgetError(
                f"{what} needs about {_mb(need)} of memory, more than this server's budget leaves "
                f"({_mb(self.budget)} in all, {_mb(self.baseline)} of it for the app itself): it cannot be loaded "
                "here. Use a smaller model, or raise XAI_LENS_MEMORY_BUDGET_MB where the machine has the memory.")
        evict: list[Hashable] = []
        used = self.in_use()
        for other, size in list(self.entries.items()):
            if used + need <= self.budget:
                break
            if other == key or other in protect:
                continue
            evict.append(other)
            used -= size
        return evict
