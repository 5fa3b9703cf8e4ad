"""Process settings of the CBOW trainers that must precede TensorFlow's import: oneDNN's
graph rewrites off (``TF_ENABLE_ONEDNN_OPTS=0``) unless the environment sets them.

Import this first (before ``tfrs_emb``). The CBOW step is small gathers, batched
products of ``[B, L, 64] × [B, 64, K]`` and row scatters, where oneDNN's per-op rewrites
and primitive setup cost more than they save: on the demo-size development release a
whole Keras training in a fresh process took 1.33 s with them off vs 1.70 s on, a second
one in the same process 1.20 vs 1.37 s (means of 5 alternating pairs under the heavy-job
lock on the shared 2-core machine; BUILD_NOTES.md, JADER CBOW, third pass). The other trainers
keep TensorFlow's default.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
