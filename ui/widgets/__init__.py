"""Widgets, grouped by what they pick: :mod:`images`, :mod:`models`, :mod:`method` (method, parameters, target),
:mod:`display`, :mod:`datasets`, :mod:`fitting` (the learn-from-data step some methods need) and :mod:`trust`."""
