"""Every change XAI Lens makes to a library's private behaviour, one module per library (:mod:`.keras` for tf_keras,
:mod:`.innvestigate`), each checking the version it was written for. :func:`xai_core.runtime.install` applies them."""
