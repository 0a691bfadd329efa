"""Test kit for rerankit and its provider plugins: fake provider servers on 127.0.0.1.

Requires nothing beyond rerankit's own dependencies.
"""

from rerankit.testing._cohere import CohereFake
from rerankit.testing._contract import ProviderContract
from rerankit.testing._server import FakeServer, ReceivedRequest, Reply
from rerankit.testing._vendor import BadRequest, FakeVendor, overlap_score

__all__ = [
    "BadRequest",
    "CohereFake",
    "FakeServer",
    "FakeVendor",
    "ProviderContract",
    "ReceivedRequest",
    "Reply",
    "overlap_score",
]
