"""The stub's extension point: a wire format is a handler plus a route, and the server's fault controls apply to
it without further code (what the Gemini, Bedrock, Mistral and Ollama formats to come rely on)."""

from __future__ import annotations

import json

import httpx
import pytest

from agentwatch.tooling.demo.stub import StubServer
from agentwatch.tooling.demo.stub.api import Call, ErrorFormat, Json, Route, Stream
from agentwatch.tooling.demo.stub.content import count_words, generate_text, text_deltas
from agentwatch.tooling.demo.stub.controls import StubError
from agentwatch.tooling.demo.stub.routes import ROUTES, errors_for, find

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

LINES = ErrorFormat("ndjson-test", lambda status, message, request_id: {"error": message, "status": status})


def ndjson_chat(call: Call) -> Json | Stream:
    """A minimal NDJSON chat format (Ollama-like), written the way a new wire-format module would be."""
    messages = call.body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubError(400, "messages required")
    model = call.model()
    text = generate_text(call.rng("model", "messages"), call.ctl.output_words)
    usage = {"prompt_eval_count": count_words(messages), "eval_count": len(text.split())}
    if call.body.get("stream", True) is False:
        return Json({"model": model, "message": {"role": "assistant", "content": text}, "done": True, **usage})
    frames = [json.dumps({"model": model, "message": {"content": piece}, "done": False}).encode() + b"\n"
              for piece in text_deltas(text)]
    frames.append(json.dumps({"model": model, "done": True, "tag": call.path_params["tag"], **usage}).encode()
                  + b"\n")
    return Stream(frames, "application/x-ndjson")


ROUTE = Route("POST", "/ndjson/{tag}/chat", ndjson_chat, LINES)
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "two words"}]}


def handler(call: Call) -> Json:
    return Json({})


def test_path_templates_match_a_segment_or_part_of_one_url_decoded():
    gemini = Route("POST", "/v1beta/models/{model}:streamGenerateContent", handler, LINES)
    assert gemini.match("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent") == {
        "model": "gemini-2.5-flash"}
    assert gemini.match("POST", "/v1beta/models/gemini-2.5-flash:generateContent") is None
    assert gemini.match("GET", "/v1beta/models/gemini-2.5-flash:streamGenerateContent") is None
    bedrock = Route("POST", "/model/{model}/converse-stream", handler, LINES)
    assert bedrock.match("POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream") == {
        "model": "anthropic.claude-3-haiku-20240307-v1:0"}
    assert bedrock.match("POST", "/model/a/b/converse-stream") is None
    assert bedrock.match("POST", "/model/a/converse") is None


def test_the_route_table_and_the_error_format_of_a_path_without_a_route():
    served = {(r.method, r.path): r.errors.name for r in ROUTES}
    assert served == {("POST", "/v1/chat/completions"): "openai", ("POST", "/v1/responses"): "openai",
                      ("POST", "/v1/embeddings"): "openai", ("POST", "/v1/messages"): "anthropic",
                      ("POST", "/v1/messages/count_tokens"): "anthropic"}
    route, params = find("POST", "/v1/messages/count_tokens")
    assert route is not None and route.path == "/v1/messages/count_tokens" and params == {}
    assert find("GET", "/v1/messages") == (None, {})
    assert errors_for("/v1/messages/batches").name == "anthropic"  # below an Anthropic route
    assert errors_for("/v1/unknown").name == "openai"
    assert errors_for("/ndjson/x/other", (ROUTE,)).name == "ndjson-test"


def test_a_new_wire_format_gets_the_fault_controls_for_free():
    with StubServer(routes=ROUTES + (ROUTE,), output_words=4) as stub, httpx.Client(base_url=stub.url) as client:
        resp = client.post("/ndjson/t1/chat", json=BODY)
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/x-ndjson"
        assert resp.headers["x-request-id"].startswith("req_")
        lines = [json.loads(line) for line in resp.text.splitlines()]
        assert len(lines) == 5 and lines[-1] == {"model": "gpt-4o-2024-08-06", "done": True, "tag": "t1",
                                                 "prompt_eval_count": 2, "eval_count": 4}
        assert "".join(line["message"]["content"] for line in lines[:-1]).count(" ") == 3
        whole = client.post("/ndjson/t1/chat", json={**BODY, "stream": False}).json()
        assert whole["message"]["content"] == "".join(line["message"]["content"] for line in lines[:-1])

        # x-stub-status and x-stub-delay answer in the route's own error format
        failed = client.post("/ndjson/t1/chat", json=BODY, headers={"x-stub-status": "503", "x-stub-delay": "0.01"})
        assert failed.status_code == 503
        assert failed.json() == {"error": "stub: forced HTTP 503 via x-stub-status", "status": 503}
        assert client.post("/ndjson/t1/chat", json={"model": "m"}).json() == {"error": "messages required",
                                                                              "status": 400}
        # x-stub-usage is the handler's to honour; x-stub-break-after cuts the stream after N frames
        got = []
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("POST", "/ndjson/t1/chat", json=BODY, headers={"x-stub-break-after": "2"}) as stream:
                for line in stream.iter_lines():
                    got.append(json.loads(line))
        assert len(got) == 2 and not any(line["done"] for line in got)
        # ... and drops a whole answer before it starts
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/ndjson/t1/chat", json={**BODY, "stream": False}, headers={"x-stub-break-after": "0"})
        assert [r["path"] for r in stub.requests][:2] == ["/ndjson/t1/chat", "/ndjson/t1/chat"]

    with StubServer() as plain, httpx.Client(base_url=plain.url) as client:
        assert client.post("/ndjson/t1/chat", json=BODY).status_code == 404  # served only where registered
