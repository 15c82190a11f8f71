"""Test support: fakes, receivers and helpers shared by the tests (no tests here).

- `otlp_receiver`: an OTLP/HTTP receiver that decodes what an instrumented process exports;
- `fake_es`: an Elasticsearch stand-in speaking the bulk, search and setup APIs;
- `alerting`: real Prometheus / Alertmanager / promtool / amtool processes on free loopback ports;
- `clihelp`: running the `agentwatch` CLI in a subprocess with a clean environment;
- `deploy_helpers`: loaders and checks for the collector, compose and Kubernetes files.
"""
