"""A scripted agent that marks its structure with the agentwatch API; run under opentelemetry-instrument.

Concurrent async runs, a nested run, a failing tool, a run that raises, a run marked failed, and a runaway
loop stopped by its budget. Talks to the stub server at $STUB_URL.
"""

import asyncio
import os

import openai

import agentwatch

STUB = os.environ["STUB_URL"]
client = openai.AsyncOpenAI(base_url=STUB + "/v1", api_key="sk-test-SECRETKEY0123456789", max_retries=0)


async def ask(text):
    return await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


@agentwatch.tool
async def search(query: str) -> str:
    return f"results for {query}"


@agentwatch.tool(name="charge_card")
async def charge(amount: int) -> str:
    raise PermissionError("card declined")


@agentwatch.agent("worker")
async def worker(steps: int) -> None:
    for i in range(steps):
        await ask(f"step {i}")
        await search(f"q{i}")


async def main() -> None:
    await asyncio.gather(worker(1), worker(2), worker(3))

    async with agentwatch.agent_run("planner"):
        await ask("plan")
        async with agentwatch.agent_run("researcher"):
            await ask("research a")
            await ask("research b")

    async with agentwatch.agent_run("billing") as run:
        await ask("bill the customer")
        try:
            await charge(100)
        except PermissionError:
            run.fail("card declined", error_type="payment_failed")

    try:
        async with agentwatch.agent_run("crasher"):
            await ask("crash")
            raise TimeoutError("downstream timed out")
    except TimeoutError:
        pass

    try:
        async with agentwatch.agent_run("runaway", budget={"inference_calls": 4}):
            while True:
                await ask("again")
    except agentwatch.BudgetExceeded:
        pass
    print("agent done")


asyncio.run(main())
