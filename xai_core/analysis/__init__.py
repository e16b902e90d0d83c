"""Dataset-scale analyses behind the Suggest, Compare Models and Dataset Explorer pages: one batched pass over a
data set, the statistics that point at images worth explaining, agreement between maps, and the explorer views."""
