"""The in-agent Elasticsearch log handler and its client.

Imported only when Elasticsearch logging is configured (`AGENTWATCH_ES_URL` or
`agentwatch.init(elasticsearch_url=...)`); it needs the `elasticsearch` client (`pip install
'agentwatch[elasticsearch]'`), which is itself imported only when a client is built. Credentials never appear
in a log line, an error message or a repr.

    client.py    build_client(), describe_error(), scrub(), warn_insecure(): also used by `agentwatch es`/`logs`
    handler.py   ElasticsearchHandler, open_handler()
"""

from agentwatch.runtime.elasticsearch.client import build_client, describe_error, scrub, warn_insecure
from agentwatch.runtime.elasticsearch.handler import RETRY_STATUSES, ElasticsearchHandler, open_handler

__all__ = ["RETRY_STATUSES", "ElasticsearchHandler", "build_client", "describe_error", "open_handler", "scrub",
           "warn_insecure"]
