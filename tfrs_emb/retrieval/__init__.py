"""Retrieval: TFRS BruteForce / ScaNN indexes and their SavedModel export."""

from tfrs_emb.retrieval.index import ScaNN
from tfrs_emb.retrieval.index import ScannConfig
from tfrs_emb.retrieval.index import build_brute_force
from tfrs_emb.retrieval.index import build_scann
from tfrs_emb.retrieval.index import export_index
from tfrs_emb.retrieval.index import load_serving_fn
