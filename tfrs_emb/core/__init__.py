"""Lowest layer: array maths, input checks, atomic files and SavedModel writing.

Nothing here imports another ``tfrs_emb`` package; every other layer may import it.
"""
