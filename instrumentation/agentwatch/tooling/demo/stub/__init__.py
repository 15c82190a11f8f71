"""A deterministic stand-in for LLM provider HTTP APIs: today OpenAI (chat completions, responses, embeddings)
and Anthropic (messages).

Why it exists: the instrumentation has to be exercised through the *real*
``openai`` and ``anthropic`` SDKs (their response parsing, stream helpers and
error classes are exactly what our wrappers see), but tests and the demo must
not need network access, API keys or money.  This server speaks just enough of
each wire protocol for the SDKs to work unmodified, answers deterministically
for a given seed, and can be told per request (``x-stub-*`` headers) to
misbehave in the ways real providers do: errors, slowness, broken streams and
missing or garbage usage figures.

Only the standard library is used so that it can run anywhere the package is
installed.

Token accounting (chosen so that cost arithmetic is checkable by hand):

* input tokens = whitespace-separated words in all prompt text + ``PROMPT_OVERHEAD``;
* output tokens = words in the generated answer (``x-stub-output-words``,
  default ``DEFAULT_OUTPUT_WORDS``) or, for a tool call, ``TOOL_CALL_TOKENS``;
* cached / cache-write / reasoning tokens are added the way each provider
  reports them: OpenAI's ``prompt_tokens``/``input_tokens`` *include* cached
  and cache-write tokens and ``completion_tokens`` includes reasoning tokens;
  Anthropic's ``input_tokens`` *excludes* ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``, and ``output_tokens`` includes thinking.

The modules: one per wire format, everything else shared.

    server.py               StubServer; the HTTP plumbing, dispatch and the fault controls, applied to every route
    controls.py             the x-stub-* request headers (`Controls`) and the errors a handler raises
    api.py                  what a wire-format module works with: `Call` (the request), `Json` / `Stream` (the
                            answer), `ErrorFormat`, `Route`
    routes.py               THE route table: (method, path template) -> handler and error format
    content.py              prompt word counts, generated text, text deltas, tool arguments from a JSON schema
    sse.py                  Server-Sent Events framing
    openai_errors.py        OpenAI's error body (shared by its three APIs)
    openai_chat.py          POST /v1/chat/completions
    openai_responses.py     POST /v1/responses
    openai_embeddings.py    POST /v1/embeddings
    anthropic_messages.py   POST /v1/messages, POST /v1/messages/count_tokens

Adding a wire format (Gemini ``:generateContent``, Bedrock ``converse``, Mistral chat, Ollama ``/api/chat``, ...)
is one module and its route registrations:

1. ``<provider>_<api>.py`` with one handler per endpoint, ``def generate(call: Call) -> Json | Stream``: it
   validates ``call.body`` (raise ``StubError(400, ...)``), plans the answer with ``content`` (seeded by
   ``call.rng(...)``, ids from ``call.next_id(...)``) and honours the usage knobs of ``call.ctl`` (usage
   missing or malformed, cached / cache-write / reasoning token counts, output words). A provider whose error
   body differs from OpenAI's defines its ``ErrorFormat`` there too (see ``anthropic_messages.ERRORS``).
2. one ``Route`` per endpoint in ``routes.ROUTES``. Path templates take ``{name}`` placeholders, read back
   URL-decoded from ``call.path_params`` (Gemini ``/v1beta/models/{model}:streamGenerateContent``, Bedrock
   ``/model/{model}/converse-stream``); query parameters are in ``call.query`` (Gemini's ``alt=sse``). A
   provider whose paths collide with another's (Mistral's ``/v1/chat/completions``) gets a prefix of its own
   (``/mistral/v1/chat/completions``, with the SDK's base URL pointing there).

The server does the rest for every route: x-stub-status and ``failure_rate`` answer in the route's error format,
x-stub-delay and ``latency`` wait before answering, x-stub-break-after cuts a ``Stream`` after N frames (or drops
a ``Json`` answer before it starts), x-stub-chunk-delay paces the frames. A ``Stream`` is a list of frames sent
with chunked transfer encoding under its own content type, whatever their framing: SSE events (``sse.py``),
NDJSON lines (Ollama, ``application/x-ndjson``) or AWS event-stream binary messages (Bedrock's
``*-stream`` endpoints, ``application/vnd.amazon.eventstream``); put a new framing in a module of its own next
to ``sse.py``.
"""

from agentwatch.tooling.demo.stub.content import DEFAULT_OUTPUT_WORDS, PROMPT_OVERHEAD, TOOL_CALL_TOKENS
from agentwatch.tooling.demo.stub.openai_embeddings import EMBEDDING_DIMENSIONS
from agentwatch.tooling.demo.stub.server import DEFAULT_MODEL_ALIASES, StubServer, main

__all__ = [
    "DEFAULT_MODEL_ALIASES",
    "DEFAULT_OUTPUT_WORDS",
    "EMBEDDING_DIMENSIONS",
    "PROMPT_OVERHEAD",
    "TOOL_CALL_TOKENS",
    "StubServer",
    "main",
]
