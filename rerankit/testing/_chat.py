"""``ChatFake``: a fake OpenAI-compatible chat completions API that judges relevance.

A request with ``logprobs: true`` is a pointwise judgement: the fake reads the query and the
document from the last user turn (the Qwen3 ``<Query>:``/``<Document>:`` format or the plain
``Query:``/``Document:`` one) and answers one token whose ``top_logprobs`` give ``yes`` the
probability ``overlap_score`` (kept within [0.001, 0.999]). Any other request is a RankGPT
window: the fake reads the ``[i] passage`` turns and answers their order by ``overlap_score``
as ``[2] > [1] > ...``. ``answer`` switches the listwise answer to a broken one to test the
repair: ``"malformed"`` (prose, repeats, unknown ids), ``"truncated"`` (the first half, cut with
``finish_reason: "length"``) or ``"empty"``. ``logprobs=False`` leaves log-probabilities out, as
models and servers that do not support them do.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from rerankit.testing._server import ReceivedRequest, Reply
from rerankit.testing._vendor import BadRequest, FakeVendor, overlap_score

__all__ = ["ChatFake"]

ListwiseAnswer = Literal["good", "malformed", "truncated", "empty"]
_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.DOTALL)
_QUERY = re.compile(r"^(?:<Query>|Query):\s*(.*)$", re.MULTILINE)
_DOCUMENT = re.compile(r"(?:^|\n)(?:<Document>|Document): ?(.*)", re.DOTALL)
_PLAIN_TAIL = "\nIs the document relevant? yes or no"
_RANK_QUERY = re.compile(r"relevance to query: (.*)\.$", re.DOTALL)


class ChatFake(FakeVendor):
    """A fake ``/v1/chat/completions`` (also ``/chat/completions``) that scores relevance."""

    paths = ("/v1/chat/completions", "/chat/completions")

    def __init__(
        self,
        api_key: str | None = "test-key",
        *,
        answer: ListwiseAnswer = "good",
        logprobs: bool = True,
    ) -> None:
        super().__init__(api_key)
        self.answer_kind = answer
        self.logprobs = logprobs

    def __call__(self, request: ReceivedRequest) -> Reply:
        if request.method != "POST" or not self.route_ok(request):
            return self.error(404, f"no route for {request.method} {request.path}")
        if not self.auth(request):
            return self.error(401, "invalid api key")
        try:
            body = request.json()
        except Exception:
            return self.error(400, "invalid JSON body")
        try:
            self.require(isinstance(body, dict), "body must be an object")
            self.require(isinstance(body.get("model"), str) and body["model"], "model required")
            messages = body.get("messages")
            self.require(isinstance(messages, list) and bool(messages), "messages required")
            self.require(
                all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages),
                "each message needs a string content",
            )
            if body.get("logprobs"):
                return Reply(body=self._judge(body, messages))
            return Reply(body=self._rank(body, messages))
        except BadRequest as exc:
            return self.error(400, str(exc))

    def error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body={"error": {"message": message, "type": "invalid"}})

    def _judge(self, body: Any, messages: list[Any]) -> Any:
        top = body.get("top_logprobs")
        self.require(type(top) is int and 0 <= top <= 20, "top_logprobs must be 0..20")
        text = messages[-1]["content"]
        query, document = _QUERY.search(text), _DOCUMENT.search(text)
        if query is None or document is None:
            raise BadRequest("no query or document in the last user turn")
        passage = document.group(1).removesuffix(_PLAIN_TAIL)
        yes = min(max(overlap_score(query.group(1), passage), 0.001), 0.999)
        token = "yes" if yes >= 0.5 else "no"
        listed = sorted(
            [("yes", math.log(yes)), ("no", math.log(1 - yes)), ("maybe", math.log(1e-4))],
            key=lambda pair: -pair[1],
        )
        position: dict[str, Any] = {"token": token, "logprob": listed[0][1]}
        position["top_logprobs"] = [{"token": t, "logprob": lp} for t, lp in listed[:top]]
        logprobs = {"content": [position]} if self.logprobs else None
        return self._completion(body, token, logprobs, "stop", len(text.split()))

    def _rank(self, body: Any, messages: list[Any]) -> Any:
        query_match = _RANK_QUERY.search(messages[1]["content"]) if len(messages) > 1 else None
        if query_match is None:
            raise BadRequest("no RankGPT query turn")
        passages = [
            match.group(2)
            for message in messages
            if message["role"] == "user" and (match := _PASSAGE.match(message["content"]))
        ]
        self.require(bool(passages), "no [i] passages")
        scores = [overlap_score(query_match.group(1), passage) for passage in passages]
        order = [index + 1 for index, _ in self.ranked(scores, None)]
        answer, finish = self._answer(order)
        words = sum(len(m["content"].split()) for m in messages)
        return self._completion(body, answer, None, finish, words)

    def _answer(self, order: list[int]) -> tuple[str, str]:
        kind = self.answer_kind
        if kind == "empty":
            return "I cannot rank these passages.", "stop"
        if kind == "truncated":
            half = order[: max(1, len(order) // 2)]
            return " > ".join(f"[{n}]" for n in half) + " > [", "length"
        if kind == "malformed":
            first, rest = order[0], order[1:]
            return (
                f"Sure! Ranking: passage {first}, then [{first}] again, [99], "
                + " >> ".join(f"({n})" for n in rest)
                + f", and [{rest[0] if rest else first}] once more.",
                "stop",
            )
        return " > ".join(f"[{n}]" for n in order), "stop"

    def _completion(
        self, body: Any, content: str, logprobs: Any, finish: str, prompt_tokens: int
    ) -> Any:
        completion = max(1, len(content.split()))
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": logprobs,
            "finish_reason": finish,
        }
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        return {
            "id": self.next_id(),
            "object": "chat.completion",
            "model": body["model"],
            "choices": [choice],
            "usage": usage,
        }
