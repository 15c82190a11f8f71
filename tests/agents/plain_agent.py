"""An ordinary agent with no telemetry code at all: the zero-code tests run it under opentelemetry-instrument.

It talks to the stub server at $STUB_URL with both SDKs: a tool-calling loop, streams, and a failing call.
"""

import json
import os

import anthropic
import openai

STUB = os.environ["STUB_URL"]
SECRET_PROMPT = "PROMPT-MARKER-zebra-quartz"

oai = openai.OpenAI(base_url=STUB + "/v1", api_key="sk-test-SECRETKEY0123456789", max_retries=0)
claude = anthropic.Anthropic(base_url=STUB, api_key="sk-ant-SECRETKEY0123456789", max_retries=0)

TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]


def lookup_order(order_id="A1"):
    return {"order_id": order_id, "status": "shipped"}


messages = [{"role": "user", "content": f"where is my order? {SECRET_PROMPT}"}]
for _ in range(4):
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    message = reply.choices[0].message
    if not message.tool_calls:
        break
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls:
        result = lookup_order(**json.loads(call.function.arguments or "{}"))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})

for chunk in oai.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                         stream_options={"include_usage": True}):
    pass

claude.messages.create(model="claude-haiku-4-5", max_tokens=200,
                       messages=[{"role": "user", "content": f"summarise {SECRET_PROMPT}"}])
with claude.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                            messages=[{"role": "user", "content": SECRET_PROMPT}]) as stream:
    stream.get_final_message()

try:
    oai.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_headers={"x-stub-status": "500"})
except openai.InternalServerError:
    pass
print("agent done")
