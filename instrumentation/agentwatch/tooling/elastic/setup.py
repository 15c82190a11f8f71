"""`agentwatch es setup`: install (or bring up to date) the ILM policy and the index template, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwatch import semconv as sc
from agentwatch.config import data_stream_name
from agentwatch.tooling.elastic.mappings import (
    TEMPLATE_PRIORITY, ilm_policy, index_template, policy_name, template_name,
)

@dataclass(frozen=True)
class SetupChange:
    kind: str  # "ILM policy" | "index template"
    name: str
    action: str  # "created" | "updated" | "unchanged"
    detail: str = ""


def setup(client: Any, namespace: str = sc.ES_DEFAULT_NAMESPACE,
          retention_days: int = sc.ES_DEFAULT_RETENTION_DAYS) -> list[SetupChange]:
    """Install (or bring up to date) the ILM policy and the index template; idempotent: an object already
    as agentwatch would write it is left alone. Returns what was created, updated or left unchanged."""
    policy_body = ilm_policy(retention_days)
    template_body = index_template(namespace)
    changes = []

    pname = policy_name(namespace)
    existing = client.options(ignore_status=404).ilm.get_lifecycle(name=pname)
    current = existing.body.get(pname) if existing.meta.status == 200 else None
    current_digest = ((current or {}).get("policy") or {}).get("_meta", {}).get("digest")
    if current_digest == policy_body["policy"]["_meta"]["digest"]:
        changes.append(SetupChange("ILM policy", pname, "unchanged"))
    else:
        client.ilm.put_lifecycle(name=pname, body=policy_body)
        changes.append(SetupChange("ILM policy", pname, "updated" if current else "created",
                                   f"delete after {retention_days} d"))

    tname = template_name(namespace)
    existing = client.options(ignore_status=404).indices.get_index_template(name=tname)
    found = existing.body.get("index_templates", []) if existing.meta.status == 200 else []
    current_t = found[0].get("index_template") if found else None
    if ((current_t or {}).get("_meta") or {}).get("digest") == template_body["_meta"]["digest"]:
        changes.append(SetupChange("index template", tname, "unchanged"))
    else:
        client.indices.put_index_template(name=tname, body=template_body)
        detail = f"priority {TEMPLATE_PRIORITY}, data stream {data_stream_name(namespace)}"
        if current_t is not None:
            detail += "; applies to new backing indices (next rollover)"
        changes.append(SetupChange("index template", tname, "updated" if current_t else "created", detail))
    return changes
