"""A small workload for the dashboard data test, run under opentelemetry-instrument next to the demo agents:
LLM calls to a model no price table knows (so agentwatch_pricing_unpriced_calls_total has data), in a loop
until stdin closes. Talks to the stub server at $STUB_URL.
"""

import os
import sys
import threading

import openai

MODEL = os.environ.get("UNPRICED_MODEL", "acme-internal-llm-1")
client = openai.OpenAI(base_url=os.environ["STUB_URL"] + "/v1", api_key="sk-test-SECRETKEY0123456789",
                       max_retries=0)
stop = threading.Event()


def _watch_stdin():
    sys.stdin.read()  # returns when the test closes our stdin (or exits)
    stop.set()


threading.Thread(target=_watch_stdin, daemon=True).start()
while not stop.is_set():
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "summarize the ticket"}])
    stop.wait(0.2)
