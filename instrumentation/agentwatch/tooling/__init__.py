"""The operator's tooling: the CLI, generators of the committed artifacts, the demo and its stub LLM server,
the local stack, Elasticsearch setup and the run timeline. Never imported by an agent's runtime.

Its dependencies (click, rich, elasticsearch, ...) come with `pip install 'agentwatch[cli]'`.
"""
