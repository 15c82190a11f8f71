"""An agent that sets agentwatch up in code with agentwatch.init() instead of opentelemetry-instrument."""

import os
import sys

import openai
from opentelemetry import trace

import agentwatch

mode = sys.argv[1]
if mode == "own-provider":
    # the application set up tracing itself; init() must keep it and only add what is missing
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    mine = TracerProvider()
    mine.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(mine)

agentwatch.init(service_name="init-agent", otlp_endpoint=os.environ["RECEIVER"])
agentwatch.init(service_name="ignored-second-call")  # idempotent
if mode == "own-provider":
    assert trace.get_tracer_provider() is mine

client = openai.OpenAI(base_url=os.environ["STUB_URL"] + "/v1", api_key="sk-test", max_retries=0)
with agentwatch.agent_run("init-agent"):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
agentwatch.shutdown()
print("agent done")
