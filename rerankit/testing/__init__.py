"""Test kit for rerankit and its provider plugins: fake provider servers on 127.0.0.1.

Requires nothing beyond rerankit's own dependencies.
"""

from rerankit.testing._cohere import CohereFake, overlap_score
from rerankit.testing._server import FakeServer, ReceivedRequest, Reply

__all__ = ["CohereFake", "FakeServer", "ReceivedRequest", "Reply", "overlap_score"]
