"""Every gen_ai.* name agentwatch writes is in the published GenAI semantic-conventions registry.

The registry is read from the installed opentelemetry-semantic-conventions package (its incubating gen_ai
attributes and metrics). A name not there fails the test unless semconv.py lists it explicitly: in
OWN_GEN_AI_NAMES (agentwatch's own, documented there) or NEWER_REGISTRY_NAMES (current registry names the
package does not ship yet). Older names agentwatch only reads (LEGACY_*) are not written and not checked.
Also: no runtime module spells a gen_ai.* name itself; they all come from semconv.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentwatch import semconv as sc

pytestmark = pytest.mark.unit

RUNTIME = Path(sc.__file__).parent / "runtime"


def published_names() -> set[str]:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
    from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

    names = set()
    for module in (gen_ai_attributes, gen_ai_metrics):
        names |= {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and v.startswith("gen_ai.")}
    return names


def written_names() -> dict[str, str]:
    """semconv constants with a gen_ai.* value, except the read-only legacy ones."""
    out = {}
    for key, value in vars(sc).items():
        if key.startswith("LEGACY_") or not key.isupper():
            continue
        if isinstance(value, str) and value.startswith("gen_ai."):
            out[key] = value
    return out


def test_registry_is_read():
    names = published_names()
    assert {"gen_ai.usage.input_tokens", "gen_ai.client.operation.duration", "gen_ai.operation.name"} <= names


def test_every_written_gen_ai_name_is_in_the_registry_or_listed():
    published = published_names()
    unknown = {key: value for key, value in written_names().items()
               if value not in published and value not in sc.OWN_GEN_AI_NAMES
               and value not in sc.NEWER_REGISTRY_NAMES}
    assert not unknown, f"gen_ai.* names in no registry and in no documented list: {unknown}"


def test_the_lists_hold_only_what_they_must():
    published = published_names()
    assert not (sc.OWN_GEN_AI_NAMES & published), "now in the registry: remove from OWN_GEN_AI_NAMES"
    assert not (sc.NEWER_REGISTRY_NAMES & published), "the package ships it now: remove from NEWER_REGISTRY_NAMES"
    written = set(written_names().values())
    assert sc.OWN_GEN_AI_NAMES <= written and sc.NEWER_REGISTRY_NAMES <= written


def test_runtime_spells_no_gen_ai_name_itself():
    literal = re.compile(r"""["']gen_ai\.[a-z_.]+["']""")
    found = [(path.name, m.group(0)) for path in RUNTIME.rglob("*.py") for m in literal.finditer(path.read_text())]
    assert not found, found
