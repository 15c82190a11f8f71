"""Shared static checks of collector configs and deploy manifests (no collector, Docker or cluster runs here)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTOR = REPO / "collector"
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yaml"
K8S = REPO / "deploy" / "kubernetes"
OVERLAYS = ("dev", "prod", "remote-write")

SECTIONS = ("receivers", "processors", "exporters", "extensions", "connectors")
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@lru_cache(maxsize=None)
def generated() -> dict[str, str]:
    """Everything `agentwatch generate` produces now from the bundled table."""
    from agentwatch.tooling import generate as gen
    from agentwatch.thresholds import load

    return gen.artifacts(load())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def merge(base: Any, over: Any) -> Any:
    """The collector's config merge: maps merge key by key, anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return over


def component_type(component_id: str) -> str:
    """`otlp/traces` -> `otlp`."""
    return component_id.split("/", 1)[0]


def pipeline_problems(config: dict[str, Any]) -> list[str]:
    """Every pipeline names only defined components, and every defined component is used."""
    problems = []
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("no pipelines")
    used: dict[str, set[str]] = {s: set() for s in SECTIONS}
    for name, pipeline in pipelines.items():
        signal = component_type(name)
        if signal not in ("traces", "metrics", "logs"):
            problems.append(f"pipeline {name}: unknown signal {signal!r}")
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problems.append(f"pipeline {name}: needs receivers and exporters")
        for kind in ("receivers", "processors", "exporters"):
            ids = pipeline.get(kind) or []
            if len(ids) != len(set(ids)):
                problems.append(f"pipeline {name}: {kind} listed twice")
            for cid in ids:
                used[kind].add(cid)
                if cid not in (config.get(kind) or {}):
                    problems.append(f"pipeline {name}: {kind[:-1]} {cid!r} is not defined")
    for cid in service.get("extensions") or []:
        used["extensions"].add(cid)
        if cid not in (config.get("extensions") or {}):
            problems.append(f"service: extension {cid!r} is not defined")
    for kind in SECTIONS:
        for cid in config.get(kind) or {}:
            if cid not in used[kind]:
                problems.append(f"{kind[:-1]} {cid!r} is defined but used nowhere")
    return problems


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) for every scalar in a YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, node


def image_problems(image: str) -> list[str]:
    """A pinned image: an explicit tag that is not `latest` (or a digest)."""
    if "@sha256:" in image:
        return []
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or not tag:
        return [f"{image}: no tag"]
    if tag == "latest" or tag.endswith("-latest"):
        return [f"{image}: floating tag {tag!r}"]
    return []


# Credentials and key-like strings that must never be committed (gitleaks-style rules, trimmed).
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |)PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "OpenAI/Anthropic key": re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    "Slack token": re.compile(r"\bxox[abpors]-[A-Za-z0-9-]{10,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "basic auth in URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@$]+@"),
    "PagerDuty routing key": re.compile(r"\b[0-9a-f]{32}\b"),
}
# `password: <literal>` style assignments; values that reference the environment, a file or a secret are fine.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([a-z0-9_]*(?:password|passwd|secret|token|api[_-]?key|routing[_-]?key|access[_-]?key))\s*[:=]\s*"
    r"['\"]?([^'\"\s#`]+)")
SAFE_VALUE = re.compile(r"^(\$\{.*\}|\$\(.*\)|<.*>|\{.*|REPLACE.*|true|false|null|none|\[\]|"
                        r"traceID|resource|service|metric|streamID|)$", re.I)  # the last: loadbalancing routing keys


def secret_findings(text: str) -> list[str]:
    """Key-like strings anywhere, and literal values assigned to password/token/key names outside comments."""
    found = [f"{name}: {m.group(0)[:24]}..." for name, rx in SECRET_PATTERNS.items() for m in rx.finditer(text)]
    for line in text.splitlines():
        if line.lstrip().startswith(("#", "//")):
            continue
        for m in SECRET_ASSIGNMENT.finditer(line):
            value = m.group(2).rstrip(",;)")
            if SAFE_VALUE.match(value) or value.startswith(("${", "$", "/", "./", "~", "../")):
                continue
            if re.fullmatch(r"[a-z][a-z-]*", value):  # a secret's key name (key: api-key), not a secret
                continue
            found.append(f"{m.group(1)} = {value[:12]}...")
    return found


SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|routing[_-]?key|access[_-]?key)$")


def secret_value_findings(doc: Any) -> list[str]:
    """In a parsed YAML/JSON document: every value under a password/token/key-named key is a reference (an
    environment or secret reference, a file path), never a literal."""
    found = []
    for path, value in walk(doc):
        leaf = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
        if not SECRET_KEYS.search(leaf.replace("-", "_")) or value in (None, "", True, False):
            continue
        if isinstance(value, str) and (ENV_REF.fullmatch(value) or value.startswith(("/", "$(")) or
                                       SAFE_VALUE.match(value)):
            continue
        found.append(f"{path} = {str(value)[:12]}...")
    return found


class KubeLoader(yaml.SafeLoader):
    """YAML as Kubernetes (Go) reads it: a bare `=` is the string "=" (kustomize writes `matchType: =`),
    not PyYAML's YAML-1.1 "value" tag."""


KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=KubeLoader) if doc is not None]
