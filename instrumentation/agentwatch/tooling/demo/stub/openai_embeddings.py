"""OpenAI embeddings, `POST /v1/embeddings`: unit vectors seeded by the input, as floats or base64 float32."""

from __future__ import annotations

import base64
import json
import random
import struct
from typing import Any

from agentwatch.tooling.demo.stub.api import Answer, Call, Json
from agentwatch.tooling.demo.stub.content import count_words
from agentwatch.tooling.demo.stub.controls import StubError

EMBEDDING_DIMENSIONS = 8


def create(call: Call) -> Answer:
    body, ctl = call.body, call.ctl
    model = call.model()
    raw_input = body.get("input")
    if isinstance(raw_input, str) or (
        isinstance(raw_input, list) and raw_input and all(isinstance(v, int) for v in raw_input)
    ):
        inputs: list[Any] = [raw_input]
    elif isinstance(raw_input, list) and raw_input:
        inputs = raw_input
    else:
        raise StubError(400, "'input' must be a non-empty string or array")
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and 1 <= dims <= 4096 else EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        rng = random.Random(f"{call.stub.seed}|{model}|{json.dumps(item)}")
        vector = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        # Round-trip through float32 so float and base64 answers are identical.
        packed = struct.pack(f"<{dims}f", *(v / norm for v in vector))
        embedding: Any = (
            base64.b64encode(packed).decode() if as_base64 else list(struct.unpack(f"<{dims}f", packed))
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(max(1, count_words(item)) for item in inputs)
    payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if ctl.usage == "malformed":
        payload["usage"] = {"prompt_tokens": "abc", "total_tokens": -5}
    elif ctl.usage != "missing":
        payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return Json(payload, {"x-request-id": call.request_id})
