"""What runs inside the user's agent: instrumentors, the span processor, run state, telemetry, logs, the API.

Runtime modules import only the contract (`agentwatch.semconv`, `pricing`, `thresholds`, `config`) and each
other, never `agentwatch.tooling`; `tests/test_layers.py` holds that line.
"""
