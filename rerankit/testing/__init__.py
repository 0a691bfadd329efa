"""Test kit for rerankit and its provider plugins: fake provider APIs on 127.0.0.1.

``FakeServer`` serves any handler over real HTTP; ``FakeVendor`` is the base of the fake
vendor APIs below (each checks what the real API checks and answers in its wire format);
``ProviderContract`` is the contract-test mixin every built-in provider passes.
Requires nothing beyond rerankit's own dependencies (and pytest for ``ProviderContract``).
"""

from rerankit.testing._chat import ChatFake
from rerankit.testing._cloud import BedrockFake, VertexFake, WatsonxFake
from rerankit.testing._cohere import CohereFake
from rerankit.testing._cohere_compatible import (
    CohereCompatibleFake,
    CohereShapedFake,
    FireworksFake,
    InfinityFake,
    JinaFake,
    LiteLLMProxyFake,
    SiliconFlowFake,
    TogetherFake,
    VLLMFake,
)
from rerankit.testing._contract import ProviderContract
from rerankit.testing._dashscope import DashScopeFake
from rerankit.testing._faults import (
    FAULT_ERRORS,
    FAULT_KINDS,
    FaultInjector,
    open_tcp_connections,
)
from rerankit.testing._hosts import (
    CloudflareFake,
    LlamaCppFake,
    LocalAIFake,
    NovitaFake,
    OpenRouterFake,
    SGLangFake,
    TensorRTLLMFake,
    XinferenceFake,
)
from rerankit.testing._hub import FakeHub, HubRepo
from rerankit.testing._server import FakeServer, Handler, ReceivedRequest, Reply
from rerankit.testing._vendor import BadRequest, FakeVendor, overlap_score
from rerankit.testing._vendors import (
    ContextualFake,
    DeepInfraFake,
    MixedbreadFake,
    NvidiaNIMFake,
    PineconeFake,
    TableFake,
    TEIFake,
    VoyageFake,
    ZeroEntropyFake,
)

__all__ = [
    "FAULT_ERRORS",
    "FAULT_KINDS",
    "BadRequest",
    "BedrockFake",
    "ChatFake",
    "CloudflareFake",
    "CohereCompatibleFake",
    "CohereFake",
    "CohereShapedFake",
    "ContextualFake",
    "DashScopeFake",
    "DeepInfraFake",
    "FakeServer",
    "FakeVendor",
    "FakeHub",
    "FaultInjector",
    "FireworksFake",
    "Handler",
    "HubRepo",
    "InfinityFake",
    "JinaFake",
    "LiteLLMProxyFake",
    "LlamaCppFake",
    "LocalAIFake",
    "MixedbreadFake",
    "NovitaFake",
    "NvidiaNIMFake",
    "OpenRouterFake",
    "PineconeFake",
    "ProviderContract",
    "ReceivedRequest",
    "Reply",
    "SGLangFake",
    "SiliconFlowFake",
    "TEIFake",
    "TableFake",
    "TensorRTLLMFake",
    "TogetherFake",
    "VLLMFake",
    "VertexFake",
    "VoyageFake",
    "WatsonxFake",
    "XinferenceFake",
    "ZeroEntropyFake",
    "open_tcp_connections",
    "overlap_score",
]
