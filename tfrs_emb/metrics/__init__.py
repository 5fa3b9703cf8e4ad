"""Set-overlap and ranking metrics with the exact definitions of SPEC.md."""

from tfrs_emb.metrics.ranking import dice
from tfrs_emb.metrics.ranking import ndcg_at_k
from tfrs_emb.metrics.ranking import precision_at_k
from tfrs_emb.metrics.ranking import rank_dice
from tfrs_emb.metrics.ranking import rank_dice_at_k
from tfrs_emb.metrics.ranking import recall_at_k
from tfrs_emb.metrics.ranking import recall_vs_exact
