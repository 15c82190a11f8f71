"""Workload for the alerting end-to-end test, run under opentelemetry-instrument with the Prometheus exporter.

Two agents marked with agentwatch.agent_run call the stub LLM server at $STUB_URL in a loop until stdin
closes: `checkout-agent`, every other run of which fails (the stub answers HTTP 500, the SDK raises, the
run ends with error.type=InternalServerError: a 50% success rate), and `support-agent`, whose runs all
succeed. Each run also calls a tool.
"""

import os
import sys
import threading
import time

import openai

import agentwatch

client = openai.OpenAI(base_url=os.environ["STUB_URL"] + "/v1", api_key="sk-test-SECRETKEY0123456789",
                       max_retries=0)
stop = threading.Event()


def _watch_stdin():
    sys.stdin.read()  # returns when the test closes our stdin (or exits)
    stop.set()


@agentwatch.tool
def lookup_order(order_id: str) -> dict:
    return {"order": order_id, "status": "shipped"}


def run(agent: str, fail: bool) -> None:
    with agentwatch.agent_run(agent):
        lookup_order("A-1")
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "where is my order?"}],
            extra_headers={"x-stub-status": "500"} if fail else None)


threading.Thread(target=_watch_stdin, daemon=True).start()
deadline = time.monotonic() + float(os.environ.get("AGENT_MAX_SECONDS", "300"))
i = 0
while not stop.is_set() and time.monotonic() < deadline:
    i += 1
    try:
        run("checkout-agent", fail=i % 2 == 0)
    except openai.InternalServerError:
        pass
    run("support-agent", fail=False)
    if i == 1:
        print("agent running", flush=True)
    stop.wait(0.05)
print("agent done", flush=True)
