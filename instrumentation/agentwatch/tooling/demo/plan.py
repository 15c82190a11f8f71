"""How many runs each demo agent does, and how they are paced, from --runs, --duration and --rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from agentwatch.tooling.demo.output import plural
from agentwatch.tooling.demo.results import DemoError

DEFAULT_RUNS = 20


@dataclass(frozen=True)
class Plan:
    """How many runs each agent does, and how they are paced."""

    runs: int | None  # None: until `duration` is over
    interval: float = 0.0  # seconds between run starts; 0: back to back
    duration: float | None = None
    rate: float | None = None

    def describe(self) -> str:
        if self.runs is None:
            return f"runs for {self.duration:g} s"
        text = plural(self.runs, "run", "runs")
        if self.interval:
            text += f" at {1 / self.interval:.3g}/s (over about {self.runs * self.interval:.3g} s)"
        return text


def plan_runs(runs: int | None = None, duration: float | None = None, rate: float | None = None) -> Plan:
    """The runs per agent and their pacing from --runs, --duration and --rate (at most two of them).

    runs only: back to back; rate: paced at `rate` runs per second (with runs, or DEFAULT_RUNS of them);
    duration and rate: ceil(duration * rate) runs paced over the duration; runs and duration: runs spread
    evenly over the duration; duration only: back to back until the duration is over."""
    given = [name for name, value in (("--runs", runs), ("--duration", duration), ("--rate", rate))
             if value is not None]
    if len(given) == 3:
        raise DemoError("give at most two of --runs, --duration and --rate (the third follows from them)")
    if runs is not None and runs < 1:
        raise DemoError(f"--runs must be at least 1, got {runs}")
    for name, value in (("--duration", duration), ("--rate", rate)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise DemoError(f"{name} must be a positive number, got {value:g}")
    if duration is not None and rate is not None:
        return Plan(runs=max(1, math.ceil(duration * rate - 1e-9)), interval=1 / rate, duration=duration, rate=rate)
    if rate is not None:
        count = runs if runs is not None else DEFAULT_RUNS
        return Plan(runs=count, interval=1 / rate, duration=count / rate, rate=rate)
    if duration is not None:
        if runs is not None:
            return Plan(runs=runs, interval=duration / runs, duration=duration, rate=runs / duration)
        return Plan(runs=None, duration=duration)
    return Plan(runs=runs if runs is not None else DEFAULT_RUNS)
