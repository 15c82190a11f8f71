"""An agent for the exit tests: a few LLM calls to the stub, a pause (background exports run meanwhile), then
it writes the moment its work ended to $EXIT_AGENT_MARK and exits. It runs plain, under
`opentelemetry-instrument`, or with EXIT_AGENT_INIT=1 through `agentwatch.init()`; its output is the same in
every case.
"""

import os
import time

if os.environ.get("EXIT_AGENT_INIT") == "1":
    import agentwatch

    agentwatch.init("exit-agent")

import openai

client = openai.OpenAI(base_url=os.environ["STUB_URL"] + "/v1", api_key="sk-test-exit", max_retries=0)
for step in range(3):
    reply = client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": f"step {step}"}])
    print("step", step, reply.choices[0].finish_reason, reply.usage.total_tokens > 0)
time.sleep(float(os.environ.get("EXIT_AGENT_PAUSE_S", "1.0")))
print("agent done")
with open(os.environ["EXIT_AGENT_MARK"], "w") as mark:
    mark.write(repr(time.time()))
