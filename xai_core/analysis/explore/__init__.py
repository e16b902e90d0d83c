"""Dataset Explorer: what a network does over a whole labelled image set (no Streamlit here).

One module per idea: :mod:`metrics` (accuracy, per-class scores, confusion), :mod:`embedding` (t-SNE of a
layer), :mod:`activations` (channel maps, maximally activating images, receptive fields), :mod:`dream`
(activation maximisation); their charts are in :mod:`xai_core.viz.explore_charts`. Everything works on the arrays
of one batched pass (:func:`xai_core.analysis.dataset_pass.dataset_pass`).

Ref. MathWorks, *UNPIC: Understand Network Predictions for Image Classification* (MATLAB Deep Learning Toolbox
example app), the views this package mirrors.
"""
