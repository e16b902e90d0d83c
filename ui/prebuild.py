"""Building, in the background, the method a page will most likely be asked for next (see
:mod:`xai_core.methods.prebuild`), within the server's memory budget."""

from __future__ import annotations

from typing import Any

from ui.cache import STORES_LOCK, get_model, memory_ledger
from xai_core.methods import methods_for
from xai_core.methods.prebuild import Prebuild, running_prebuild, start_prebuild
from xai_core.methods.prepared import is_prepared
from xai_core.models.memory import build_cost, rss_bytes


def prebuild(model_key: str, method_id: str, params: dict[str, Any], layer: str | None = None) -> Prebuild | None:
    """Start building ``method_id`` for ``model_key``'s classes (or neurons of ``layer``) in the background
    (:mod:`xai_core.methods.prebuild`), so that a later page finds it built; only when the build fits the memory
    budget without unloading any model (a guess must not cost a model someone uses). Returns the build's record
    (also one started earlier, by any session), or None: built already, not offered, or no room."""
    bundle = get_model(model_key)
    running = running_prebuild(bundle, method_id, params, layer)
    if running is not None and not running.error:
        return running
    if method_id not in methods_for(bundle) or is_prepared(bundle, method_id, params, layer):
        return None
    budget = memory_ledger()  # the object itself: the build's thread charges it outside a script run
    need = build_cost(4 * bundle.num_params, bundle.input_size[0] * bundle.input_size[1])
    with STORES_LOCK:
        if 0 < budget.budget < budget.in_use() + need:
            return None
    before = rss_bytes()

    def charge(record: Prebuild) -> None:  # in the build's thread: the ledger itself, not the cached getter
        if record.ready:
            with STORES_LOCK:
                if model_key in budget.entries:
                    budget.charge(model_key, max(0, rss_bytes() - before))

    return start_prebuild(bundle, method_id, params, layer, on_done=charge)
