"""Reranking on Ray Data: ``rerank_dataset`` and one rate-limit quota for the whole cluster.

Needs the ``ray`` extra: ``pip install 'rerankit[ray]'`` (in a checkout of rerankit's
repository, ``pip install '.[ray]'``). ``ray`` is imported here only.
"""

from rerankit._install import install_hint

try:
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is part of the test install
    raise ImportError(f"rerankit.ray needs Ray: {install_hint('ray')}") from exc

from rerankit.ray._dataset import RESULT_COLUMNS, rerank_dataset
from rerankit.ray._quota import ClusterQuota

__all__ = ["RESULT_COLUMNS", "ClusterQuota", "rerank_dataset"]
