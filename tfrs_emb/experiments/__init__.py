"""Experiments: one module per experiment, each a ``Config`` dataclass and ``run(config, log)``.

An experiment wires the layers below it (data → models → embeddings → retrieval → metrics
→ reporting) into one reproducible run and returns a result dataclass; it never parses
flags, prints or seeds global state. ``trainers/`` turns flags into a ``Config``.
"""
