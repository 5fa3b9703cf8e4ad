"""Process settings of the CBOW trainers that must precede TensorFlow's import: oneDNN's
graph rewrites off (``TF_ENABLE_ONEDNN_OPTS=0``) unless the environment sets them.

Import this first (before ``tfrs_emb``). The CBOW step is small gathers, batched
products of ``[B, L, 64] × [B, 64, K]`` and row scatters, where oneDNN's per-op rewrites
and primitive setup cost more than they save: on the 30k-case demo a whole Keras training
(fresh process, fixed costs included) took 1.17 s with them off vs 1.35 s on (mean of 4
alternating pairs, shared 2-core machine; model build ~45 vs ~105 ms, first epoch ~0.35
vs ~0.4 s, later epochs about equal; BUILD_NOTES.md, JADER CBOW). The other trainers
keep TensorFlow's default.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
