"""Beyond one process: embed a corpus with Apache Beam and index the vectors in shards.

``records`` (corpus readers), ``model`` (an exported model as a RunInference handler),
``embed`` (the Beam pipeline and its output folder), ``vectors`` (reading the output
back), ``sharded_index`` (K index shards + a merged top-k, exported as one SavedModel).
"""
