"""Fake cloud rerank APIs with real authentication: Bedrock (SigV4), Vertex AI, watsonx.

``BedrockFake`` verifies each request's AWS Signature V4 against known test credentials (with
its own implementation of the algorithm, not botocore's) and paginates its answers.
``VertexFake`` serves the Discovery Engine ``rank`` route and a Google OAuth2 token endpoint
that verifies the service-account JWT it is sent (``service_account_info`` makes a matching
key; this needs ``cryptography``). ``WatsonxFake`` serves the watsonx.ai text rerank route and
an IBM Cloud IAM token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote

import msgspec

from rerankit.testing._server import ReceivedRequest, Reply
from rerankit.testing._vendor import FakeVendor

__all__ = ["BedrockFake", "VertexFake", "WatsonxFake"]


def _form(request: ReceivedRequest) -> dict[str, str]:
    """A form-encoded body as a dict (the last value of a repeated field wins)."""
    return {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class BedrockFake(FakeVendor):
    """The Bedrock Agent Runtime ``Rerank`` API, signature checks and pagination included.

    A request must carry a valid SigV4 signature (service ``bedrock``, ``region``) made with
    ``access_key_id`` / ``secret_access_key`` (and ``session_token`` when set), dated within
    five minutes; otherwise it gets AWS's 403. Answers hold at most ``page_size`` results, with
    a ``nextToken`` for the rest. ``queries`` must hold exactly one ``TEXT`` query; sources
    are ``TEXT`` or ``JSON`` inline documents; ``numberOfResults`` may not exceed the sources.
    """

    paths = ("/rerank",)
    id_prefix = "fake-request-"

    def __init__(
        self,
        access_key_id: str = "AKIDEXAMPLE",
        secret_access_key: str = "fake-secret-access-key",
        *,
        session_token: str | None = None,
        region: str = "us-west-2",
        page_size: int = 4,
    ) -> None:
        super().__init__(None)
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.region = region
        self.page_size = page_size

    def __call__(self, request: ReceivedRequest) -> Reply:
        request_id = self.next_id()
        if request.method == "POST" and self.route_ok(request):
            problem = self.signature_problem(request)
            if problem is not None:
                return Reply(
                    status=403,
                    body={"message": problem},
                    headers={
                        "x-amzn-ErrorType": "InvalidSignatureException",
                        "x-amzn-RequestId": request_id,
                    },
                )
        reply = super().__call__(request)
        reply.headers["x-amzn-RequestId"] = request_id
        return reply

    def auth(self, request: ReceivedRequest) -> bool:
        return True  # the signature is checked in __call__, with AWS's 403

    def signature_problem(self, request: ReceivedRequest) -> str | None:
        """Why the request's SigV4 signature is not valid, or ``None`` when it is."""
        headers = request.headers
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
            headers.get("authorization", ""),
        )
        if match is None:
            return "Missing Authentication Token"
        key_id, day, region, service, signed, signature = match.groups()
        if key_id != self.access_key_id:
            return "The security token included in the request is invalid."
        if region != self.region or service != "bedrock":
            return f"Credential should be scoped to a valid region/service, not {region}/{service}"
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return "X-Amz-Date is missing or malformed"
        if amz_date[:8] != day or abs(time.time() - when.timestamp()) > 300:
            return "Signature expired or dated in the future"
        names = signed.split(";")
        required = {"host", "x-amz-date"} | (
            {"x-amz-security-token"} if self.session_token else set()
        )
        if not required <= set(names) or any(name not in headers for name in names):
            return f"SignedHeaders must include {sorted(required)} and only headers sent"
        if self.session_token and headers["x-amz-security-token"] != self.session_token:
            return "The security token included in the request is invalid."
        canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted(request.query.items())
        )
        canonical_request = "\n".join(
            [
                request.method,
                quote(request.path, safe="/-_.~"),
                canonical_query,
                canonical_headers,
                signed,
                hashlib.sha256(request.body).hexdigest(),
            ]
        )
        scope = f"{day}/{region}/{service}/aws4_request"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = _hmac(f"AWS4{self.secret_access_key}".encode(), day)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        return None

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        require = self.require
        unknown = set(body) - {"queries", "sources", "rerankingConfiguration", "nextToken"}
        require(not unknown, f"Unknown fields {sorted(unknown)}")
        queries = body.get("queries")
        require(isinstance(queries, list) and len(queries) == 1, "queries must hold 1 query")
        query = queries[0]
        require(
            isinstance(query, dict)
            and query.get("type") == "TEXT"
            and isinstance(query.get("textQuery"), dict)
            and isinstance(query["textQuery"].get("text"), str),
            "each query must be {type: TEXT, textQuery: {text}}",
        )
        sources = body.get("sources")
        require(isinstance(sources, list) and 1 <= len(sources) <= 1000, "1 to 1000 sources")
        texts = [self._source_text(source) for source in sources]
        config = body.get("rerankingConfiguration")
        require(
            isinstance(config, dict) and config.get("type") == "BEDROCK_RERANKING_MODEL",
            "rerankingConfiguration.type must be BEDROCK_RERANKING_MODEL",
        )
        bedrock = config.get("bedrockRerankingConfiguration")
        require(isinstance(bedrock, dict), "bedrockRerankingConfiguration is required")
        model = bedrock.get("modelConfiguration")
        require(
            isinstance(model, dict)
            and isinstance(model.get("modelArn"), str)
            and re.fullmatch(
                rf"arn:aws:bedrock:{re.escape(self.region)}::foundation-model/[\w.:-]+",
                model["modelArn"],
            )
            is not None,
            "modelConfiguration.modelArn must be a foundation-model ARN in this region",
        )
        extra = model.get("additionalModelRequestFields")
        require(extra is None or isinstance(extra, dict), "bad additionalModelRequestFields")
        top_n = bedrock.get("numberOfResults")
        require(
            top_n is None or (isinstance(top_n, int) and 1 <= top_n <= len(sources)),
            "numberOfResults must be between 1 and the number of sources",
        )
        token = body.get("nextToken")
        require(
            token is None
            or (isinstance(token, str) and token.partition(".")[2] == self._digest(body)),
            "nextToken does not belong to this request",
        )
        return query["textQuery"]["text"], texts, top_n

    def _source_text(self, source: Any) -> str:
        self.require(
            isinstance(source, dict)
            and source.get("type") == "INLINE"
            and isinstance(source.get("inlineDocumentSource"), dict),
            "each source must be {type: INLINE, inlineDocumentSource}",
        )
        inline = source["inlineDocumentSource"]
        if inline.get("type") == "TEXT":
            document = inline.get("textDocument")
            self.require(
                isinstance(document, dict) and isinstance(document.get("text"), str),
                "a TEXT source needs textDocument.text",
            )
            return str(document["text"])
        self.require(inline.get("type") == "JSON", "inline document type must be TEXT or JSON")
        document = inline.get("jsonDocument")
        self.require(
            isinstance(document, dict) and bool(document), "a JSON source needs jsonDocument"
        )
        return " ".join(
            v if isinstance(v, str) else msgspec.json.encode(v).decode() for v in document.values()
        )

    @staticmethod
    def _digest(body: dict[str, Any]) -> str:
        rest = {k: v for k, v in body.items() if k != "nextToken"}
        return hashlib.sha256(msgspec.json.encode(rest, order="sorted")).hexdigest()[:16]

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        ranked = self.ranked(scores, top_n)
        token = body.get("nextToken")
        start = int(token.partition(".")[0]) if token else 0
        page = ranked[start : start + self.page_size]
        sources = body["sources"]
        results = []
        for index, score in page:
            inline = sources[index]["inlineDocumentSource"]
            results.append({"index": index, "relevanceScore": score, "document": inline})
        answer: dict[str, Any] = {"results": results}
        if start + self.page_size < len(ranked):
            answer["nextToken"] = f"{start + self.page_size}.{self._digest(body)}"
        return answer


class VertexFake(FakeVendor):
    """The Discovery Engine ``rank`` API, and a Google OAuth2 token endpoint (``token_path``).

    The rank route is ``/v1/projects/{project}/locations/{location}/...:rank``; it needs
    ``Authorization: Bearer <t>`` with ``t`` in ``tokens`` and ``X-Goog-User-Project``
    naming the project. Records (at most 200) need a unique string ``id`` and a ``title``
    and/or ``content``; answers are sorted, cut to ``topN``, leave out zero scores (as proto3
    JSON does) and echo record details unless ``ignoreRecordDetailsInResponse``.

    The token endpoint takes the JWT-bearer grant signed with the key ``service_account_info``
    made, checks its issuer, audience, scope and expiry, and issues ``ya29.fake-<n>`` tokens
    (added to ``tokens``) that last ``token_lifetime`` seconds.
    """

    def __init__(
        self,
        tokens: set[str] | None = None,
        *,
        project: str = "test-project",
        location: str = "global",
        token_path: str = "/token",
        token_lifetime: int = 3600,
    ) -> None:
        super().__init__(None)
        self.tokens: set[str] = set() if tokens is None else tokens
        self.project = project
        self.location = location
        self.token_path = token_path
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self.client_email: str | None = None
        self._public_key: Any = None
        self._lock = threading.Lock()
        self.paths = (
            f"/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank",
        )

    def service_account_info(self, token_uri: str, project_id: str | None = None) -> dict[str, str]:
        """A new service-account key (a fresh RSA key) whose tokens this fake will issue."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = private_key.public_key()
        self.client_email = f"rerankit-test@{project_id or 'fake'}.iam.gserviceaccount.com"
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "private_key_id": "fake-key-id",
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "token_uri": token_uri,
        }
        if project_id is not None:
            info["project_id"] = project_id
        return info

    def __call__(self, request: ReceivedRequest) -> Reply:
        if request.method == "POST" and request.path == self.token_path:
            return self.token_reply(request)
        return super().__call__(request)

    def token_reply(self, request: ReceivedRequest) -> Reply:
        """The OAuth2 token endpoint: a JWT-bearer grant in, an access token out."""
        form = _form(request)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(status=400, body={"error": "unsupported_grant_type"})
        problem = self._assertion_problem(form.get("assertion", ""), request)
        if problem is not None:
            return Reply(status=400, body={"error": "invalid_grant", "error_description": problem})
        with self._lock:
            self.tokens_issued += 1
            token = f"ya29.fake-{self.tokens_issued}"
            self.tokens.add(token)
        return Reply(
            body={"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _assertion_problem(self, assertion: str, request: ReceivedRequest) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if self._public_key is None:
            return "no service account key was made for this fake"
        parts = assertion.split(".")
        if len(parts) != 3:
            return "Invalid JWT"

        def decode(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            self._public_key.verify(
                decode(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return "Invalid JWT Signature."
        claims = msgspec.json.decode(decode(parts[1]))
        audiences = {
            "https://oauth2.googleapis.com/token",  # what google-auth signs for any token_uri
            f"http://{request.headers.get('host', '')}{request.path}",
        }
        if claims.get("iss") != self.client_email or claims.get("aud") not in audiences:
            return "Invalid JWT: issuer or audience"
        if "https://www.googleapis.com/auth/cloud-platform" not in claims.get("scope", "").split():
            return "Invalid JWT: scope"
        if not claims.get("iat", 0) - 300 <= time.time() < claims.get("exp", 0):
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        return None

    def auth(self, request: ReceivedRequest) -> bool:
        value = request.headers.get("authorization", "")
        return value.startswith("Bearer ") and value[7:] in self.tokens

    def error(self, status: int, message: str) -> Reply:
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}
        return Reply(
            status=status,
            body={"error": {"code": status, "message": message, "status": names.get(status)}},
        )

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        require = self.require
        require(
            request.headers.get("x-goog-user-project") == self.project,
            "User project specified in the request is invalid.",
        )
        allowed = {
            "model",
            "query",
            "records",
            "topN",
            "ignoreRecordDetailsInResponse",
            "userLabels",
        }
        unknown = set(body) - allowed
        require(not unknown, f"Invalid JSON payload received. Unknown name {sorted(unknown)}")
        require(isinstance(body.get("query"), str) and body["query"], "query is required")
        require(body.get("model") is None or isinstance(body["model"], str), "bad model")
        records = body.get("records")
        require(isinstance(records, list) and 1 <= len(records) <= 200, "1 to 200 records")
        texts, ids = [], set()
        for record in records:
            require(isinstance(record, dict), "records must be objects")
            require(set(record) <= {"id", "title", "content"}, "unknown record field")
            require(isinstance(record.get("id"), str) and record["id"] not in ids, "bad record id")
            ids.add(record["id"])
            parts = [record.get(field) for field in ("title", "content")]
            require(all(p is None or isinstance(p, str) for p in parts), "bad title or content")
            require(any(parts), "a record needs a title or content")
            texts.append(" ".join(p for p in parts if p))
        top_n = body.get("topN")
        require(top_n is None or isinstance(top_n, int), "topN must be an integer")
        require(
            isinstance(body.get("ignoreRecordDetailsInResponse", False), bool),
            "bad ignoreRecordDetailsInResponse",
        )
        return body["query"], texts, top_n if top_n and top_n > 0 else None

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        details = not body.get("ignoreRecordDetailsInResponse", False)
        out = []
        for index, score in self.ranked(scores, top_n):
            source = body["records"][index]
            record: dict[str, Any] = {"id": source["id"]}
            if score:
                record["score"] = score
            if details:
                record.update({k: v for k, v in source.items() if k in ("title", "content")})
            out.append(record)
        return {"records": out}


class WatsonxFake(FakeVendor):
    """The watsonx.ai text rerank API, and an IBM Cloud IAM token endpoint (``iam_path``).

    The rerank route needs a ``version=YYYY-MM-DD`` query parameter and ``Authorization:
    Bearer <t>`` with ``t`` in ``tokens`` or ``ZenApiKey <k>`` with ``k`` in
    ``zen_api_keys``; the body needs exactly one of ``project_id`` / ``space_id``, ``inputs``
    of ``{text}`` and only documented ``parameters``. Answers are sorted, cut to
    ``return_options.top_n``, and report ``input_token_count`` (one token per word).

    The IAM endpoint exchanges a key in ``api_keys`` for ``iam-token-<n>`` (added to
    ``tokens``), answering after ``iam_delay`` seconds; ``iam_requests`` counts exchanges.
    """

    paths = ("/ml/v1/text/rerank",)

    def __init__(
        self,
        tokens: set[str] | None = None,
        *,
        api_keys: set[str] | None = None,
        zen_api_keys: set[str] | None = None,
        iam_path: str = "/identity/token",
        token_lifetime: int = 3600,
        iam_delay: float = 0.0,
    ) -> None:
        super().__init__(None)
        self.tokens: set[str] = set() if tokens is None else tokens
        self.api_keys = api_keys or set()
        self.zen_api_keys = zen_api_keys or set()
        self.iam_path = iam_path
        self.token_lifetime = token_lifetime
        self.iam_delay = iam_delay
        self.iam_requests = 0
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        if request.method == "POST" and request.path == self.iam_path:
            return self.iam_reply(request)
        return super().__call__(request)

    def iam_reply(self, request: ReceivedRequest) -> Reply:
        """IBM Cloud IAM: ``grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=...``."""
        with self._lock:
            self.iam_requests += 1
            count = self.iam_requests
        form = _form(request)
        if (
            not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            )
            or form.get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey"
        ):
            return Reply(
                status=400,
                body={"errorCode": "BXNIM0103E", "errorMessage": "Unsupported grant type."},
            )
        if form.get("apikey") not in self.api_keys:
            return Reply(
                status=400,
                body={
                    "errorCode": "BXNIM0415E",
                    "errorMessage": "Provided API key could not be found.",
                },
            )
        token = f"iam-token-{count}"
        with self._lock:
            self.tokens.add(token)
        issued = int(time.time())
        return Reply(
            delay=self.iam_delay,
            body={
                "access_token": token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "expiration": issued + self.token_lifetime,
                "scope": "ibm openid",
            },
        )

    def auth(self, request: ReceivedRequest) -> bool:
        value = request.headers.get("authorization", "")
        scheme, _, credential = value.partition(" ")
        if scheme == "Bearer":
            return credential in self.tokens
        return scheme == "ZenApiKey" and credential in self.zen_api_keys

    def error(self, status: int, message: str) -> Reply:
        code = {401: "authentication_token_not_valid", 404: "not_found"}.get(
            status, "invalid_input_argument"
        )
        return Reply(
            status=status,
            body={
                "errors": [{"code": code, "message": message}],
                "trace": "fake-trace",
                "status_code": status,
            },
        )

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        require = self.require
        require(
            re.fullmatch(r"\d{4}-\d{2}-\d{2}", request.query.get("version", "")) is not None,
            "Missing or invalid query parameter `version`",
        )
        unknown = set(body) - {
            "model_id",
            "query",
            "inputs",
            "parameters",
            "project_id",
            "space_id",
        }
        require(not unknown, f"unknown fields {sorted(unknown)}")
        require(isinstance(body.get("model_id"), str) and body["model_id"], "model_id is required")
        require(isinstance(body.get("query"), str) and body["query"], "query is required")
        require(
            ("project_id" in body) != ("space_id" in body),
            "Either 'space_id' or 'project_id' has to be provided",
        )
        inputs = body.get("inputs")
        require(isinstance(inputs, list) and bool(inputs), "inputs is required")
        for item in inputs:
            require(
                isinstance(item, dict) and set(item) == {"text"} and isinstance(item["text"], str),
                "each input must be {text}",
            )
        parameters = body.get("parameters", {})
        require(isinstance(parameters, dict), "parameters must be an object")
        require(
            set(parameters) <= {"truncate_input_tokens", "return_options"}, "unknown parameters"
        )
        truncate = parameters.get("truncate_input_tokens")
        require(truncate is None or (isinstance(truncate, int) and truncate >= 1), "bad truncate")
        options = parameters.get("return_options", {})
        require(
            isinstance(options, dict) and set(options) <= {"top_n", "inputs", "query"},
            "unknown return_options",
        )
        top_n = options.get("top_n")
        require(top_n is None or (isinstance(top_n, int) and top_n >= 1), "bad top_n")
        texts = [item["text"] for item in inputs]
        if truncate is not None:
            texts = [" ".join(text.split()[:truncate]) for text in texts]
        return body["query"], texts, top_n

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        options = body.get("parameters", {}).get("return_options", {})
        results = []
        for index, score in self.ranked(scores, top_n):
            result: dict[str, Any] = {"index": index, "score": score}
            if options.get("inputs"):
                result["input"] = body["inputs"][index]
            results.append(result)
        answer: dict[str, Any] = {
            "model_id": body["model_id"],
            "results": results,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "input_token_count": sum(
                len(item["text"].split()) + len(body["query"].split()) for item in body["inputs"]
            ),
        }
        if options.get("query"):
            answer["query"] = body["query"]
        return answer
