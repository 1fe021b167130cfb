"""What the layers know: analyses of a trained model (attention heads, head importance and
pruning)."""

from bertkit.analysis.heads import HeadStatistics, head_statistics, read_sentences
from bertkit.analysis.pruning import head_importance, prune_least_important

__all__ = ["HeadStatistics", "head_importance", "head_statistics", "prune_least_important",
           "read_sentences"]
