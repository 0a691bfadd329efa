"""Reranking on Ray Data: ``rerank_dataset`` and one rate-limit quota for the whole cluster.

Needs the ``ray`` extra (``pip install 'rerankit[ray]'``); ``ray`` is imported here only.
"""

from rerankit.ray._dataset import RESULT_COLUMNS, rerank_dataset
from rerankit.ray._quota import ClusterQuota

__all__ = ["RESULT_COLUMNS", "ClusterQuota", "rerank_dataset"]
