"""The Streamlit side of XAI Lens: everything the pages share, one concern per module.

- :mod:`ui.cache` — every ``st.cache_resource`` / ``st.cache_data`` (models, data, maps, long computations);
- :mod:`ui.state` — session-state helpers and the declared hand-off API ("open this in Visualize");
- :mod:`ui.feedback` — errors and progress in the page (never a traceback);
- :mod:`ui.explanations` — maps for a grid of (model, method) columns × images, as typed cells;
- :mod:`ui.page`, :mod:`ui.router`, :mod:`ui.format` — page header, routing workaround, labels;
- :mod:`ui.widgets` — widgets grouped by what they pick: images, models, method and target, display, data sets,
  the fitting step, the trust panel.

Pages read widgets, call :mod:`xai_core` (through :mod:`ui.cache`), and render.
"""
