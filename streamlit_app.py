"""XAI Lens entry point: page config, shared sidebar, navigation. Nothing else (pages do the work)."""

import streamlit as st

from ui.run import end_run, start_run

st.set_page_config(page_title="XAI Lens", page_icon=":material/visibility:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/visualize.py", title="Visualize", icon=":material/image_search:"),
    st.Page("pages/compare.py", title="Compare Models", icon=":material/compare:"),
    st.Page("pages/suggest.py", title="Suggest", icon=":material/insights:"),
    st.Page("pages/explorer.py", title="Dataset Explorer", icon=":material/dataset:"),
    st.Page("pages/trust.py", title="Trust", icon=":material/verified_user:"),
    st.Page("pages/methods.py", title="Methods", icon=":material/menu_book:"),
]
nav = st.navigation(pages)
with st.sidebar:
    st.caption("XAI Lens · explain Keras image classifiers with iNNvestigate, Grad-CAM and occlusion.")
start_run()  # the memory budget never unloads a model this run uses
try:
    nav.run()
finally:
    end_run()
