"""Methods: the registry as a readable catalogue — what each map shows, when it misleads, the paper."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.router import through_router
from ui.widgets.trust import insensitivity_notes
from xai_core.methods import FAMILIES, REGISTRY
from xai_core.models.canonize import CANONIZATION_NOTE

through_router()
st.title("Explanation methods")
st.markdown(f"XAI Lens offers **{len(REGISTRY)} methods** in {len(FAMILIES)} families. Each model only offers "
            "the methods that can run on it (for example, ReLU-only methods are hidden for swish networks).")

query = st.text_input("Search", placeholder="e.g. lrp, gradient, Selvaraju", key="methods.query").strip().lower()
for family in FAMILIES:
    specs = [s for s in REGISTRY.values() if s.family == family]
    if query:
        specs = [s for s in specs if query in f"{s.id} {s.label} {s.summary} {s.reference}".lower()]
    if not specs:
        continue
    st.subheader(family)
    if any(s.relevance for s in specs):
        st.caption(f":material/tune: **BatchNorm networks.** {CANONIZATION_NOTE}")
    for spec in specs:
        flagged = insensitivity_notes(spec.id)  # sanity checks run in this server, or precomputed on the demo
        mark = " · :orange[insensitive to the model]" if flagged else ""
        with st.expander(f"**{spec.label}** · `{spec.id}`{mark}"):
            for note in flagged:
                st.warning(f"**Sanity check: insensitive to the model.** {note}", icon=":material/gpp_maybe:")
            st.markdown(f"**What the map shows.** {spec.summary}")
            st.markdown(f"**When it misleads.** {spec.caveat}")
            st.markdown(f"**Paper.** {spec.reference}")
            st.markdown(f"**Map.** {'signed (diverging colours, centred at 0)' if spec.signed else 'non-negative'}"
                        f" · **targets:** {', '.join(spec.targets)}")
            if spec.params:
                st.dataframe(
                    pd.DataFrame([{"parameter": p.label, "default": "auto" if p.default is None else str(p.default),
                                   "range / choices": ", ".join(map(str, p.choices)) if p.choices
                                   else ("" if p.min is None else f"{p.min:g} – {p.max:g}"),
                                   "meaning": p.help} for p in spec.params]),
                    hide_index=True, width="stretch",
                )
