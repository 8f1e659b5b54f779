"""Compatibility layers: the names of other systems' APIs, each a thin layer over visionforge.

One module per system (``visionforge.compat.lightning``, ...); see ``docs/migrating.md``.
"""
