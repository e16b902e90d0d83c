"""Building, in the background, the method a page will most likely be asked for next
(:func:`xai_core.methods.build.build_in_background`), within the server's memory budget."""

from __future__ import annotations

from typing import Any

from ui.cache import STORES_LOCK, charge_build, get_model, memory_ledger
from xai_core.methods import methods_for
from xai_core.methods.build import Build, build_in_background, is_built, record
from xai_core.models.memory import build_cost


def prebuild(model_key: str, method_id: str, params: dict[str, Any], layer: str | None = None) -> Build | None:
    """Start building ``method_id`` for ``model_key``'s classes (or neurons of ``layer``) in the background, so that
    a later page finds it built; only when the build fits the memory budget without unloading any model (a guess must
    not cost a model someone uses). Returns the build's record (also one started earlier, by any session), or None:
    built already, not offered, or no room. A finished background build's memory is charged to the model here, by
    the page's own run (the build's thread never calls into the UI)."""
    bundle = get_model(model_key)
    found = record(bundle, method_id, params, layer)
    if found is not None and not found.error:
        if found.done:
            charge_build(model_key, found.take_rss_growth())
        return found if found.background else None
    if method_id not in methods_for(bundle) or is_built(bundle, method_id, params, layer):
        return None
    ledger = memory_ledger()
    need = build_cost(4 * bundle.num_params, bundle.input_size[0] * bundle.input_size[1])
    with STORES_LOCK:
        if 0 < ledger.budget < ledger.in_use() + need:
            return None
    return build_in_background(bundle, method_id, params, layer)
