from xai_core import runtime  # noqa: F401  (graph mode before anything else)
