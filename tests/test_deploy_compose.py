"""deploy/compose: the one-node stack, checked statically (no Docker engine here).

The compose file validates against the Compose Specification schema (vendored by check-jsonschema); every
image is pinned; every file it mounts exists; ports and endpoints agree between the collector config,
Prometheus, Grafana's provisioned datasources, Tempo and the services; every long-running service has a
health check that its dependents wait for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from agentwatch.tooling.generate import collector as col
from agentwatch.thresholds import load
from support.deploy_helpers import (COMPOSE_DIR, COMPOSE_FILE, REPO, image_problems, load_yaml, merge, pipeline_problems)

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

ENV_DEFAULT = re.compile(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def _host_path(spec: str) -> tuple[Path, str]:
    """A bind mount "host:container[:ro]" -> (host path resolved like compose does, container path)."""
    source, target = ENV_DEFAULT.sub(lambda m: m.group(2), spec).split(":")[:2]
    return (COMPOSE_DIR / source).resolve(), target


def _binds(service: dict) -> list[tuple[Path, str]]:
    return [_host_path(v) for v in service.get("volumes", []) if isinstance(v, str) and v.startswith((".", "$", "/"))]


def _published(service: dict) -> dict[int, str]:
    out = {}
    for port in service.get("ports", []):
        host_ip, host, container = str(port).split(":")
        out[int(container)] = host_ip
    return out


def test_validates_against_the_compose_specification(compose):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = pytest.importorskip("check_jsonschema.builtin_schemas.vendor")
    from importlib.resources import files

    schema = json.loads(files(schemas).joinpath("compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)  # draft 2020-12: unknown keys are errors
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_whole_stack_with_pinned_images(compose):
    services = compose["services"]
    assert {"otelcol", "prometheus", "alertmanager", "grafana", "elasticsearch", "jaeger"} <= set(services)
    for name, service in services.items():
        assert "image" in service, name
        assert image_problems(service["image"]) == [], name
    assert services["otelcol"]["image"] == col.OTELCOL_IMAGE
    from importlib.metadata import version

    assert services["es-setup"]["image"] == f"agentwatch:{version('agentwatch')}"
    assert (REPO / services["es-setup"]["build"]["context"].replace("../..", ".")).resolve() == REPO
    dockerfile = REPO / services["es-setup"]["build"]["dockerfile"]
    assert dockerfile.is_file()
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
    assert image_problems(base) == []
    assert (dockerfile.parent / (dockerfile.name + ".dockerignore")).is_file()


def test_every_mounted_file_exists(compose):
    for name, service in compose["services"].items():
        for host, target in _binds(service):
            assert host.exists(), f"{name}: mounts {host} (at {target}), which does not exist"


def test_health_checks_and_start_order(compose):
    services = compose["services"]
    for name, service in services.items():
        if service.get("restart") == "no":  # one-shot jobs
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}'s health, which has no check"
            if cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no"
    # The collector writes logs only after the data stream exists.
    assert services["otelcol"]["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"
    # GOMEMLIMIT below the container limit, so the Go runtime collects before memory_limiter refuses data.
    otelcol = services["otelcol"]
    assert otelcol["environment"]["GOMEMLIMIT"] == "800MiB" and otelcol["mem_limit"] == "1g"
    # The collector's own health check validates the same config files it runs with.
    test = services["otelcol"]["healthcheck"]["test"]
    assert [a for a in test if a.startswith("--config=")] == services["otelcol"]["command"]


def test_every_port_is_published_on_loopback_only(compose):
    for name, service in compose["services"].items():
        for container, host_ip in _published(service).items():
            assert host_ip == "127.0.0.1", f"{name}: port {container} is published on {host_ip or 'all addresses'}"


@pytest.fixture(scope="module")
def collector_config(compose) -> dict:
    """What the compose collector runs: standalone.yaml with deploy/compose/otelcol/compose.yaml merged over it."""
    configs = {target: host for host, target in _binds(compose["services"]["otelcol"])}
    merged: dict = {}
    for arg in compose["services"]["otelcol"]["command"]:
        merged = merge(merged, load_yaml(configs[arg.split("=", 1)[1]]))
    return merged


def test_the_collector_runs_the_generated_standalone_config(compose, collector_config):
    configs = {target: host for host, target in _binds(compose["services"]["otelcol"])}
    assert REPO / col.STANDALONE_FILE in configs.values()
    assert pipeline_problems(collector_config) == []
    assert collector_config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/traces", "otlp/tempo"]


def test_ports_and_endpoints_agree(compose, collector_config):
    services = compose["services"]
    otelcol = services["otelcol"]
    published = _published(otelcol)
    for port in (col.OTLP_GRPC_PORT, col.OTLP_HTTP_PORT, col.HEALTH_PORT):
        assert port in published
    env = otelcol["environment"]
    # The collector's backends are compose services, on the ports they listen on.
    host, port = env[col.ENV_TRACES_ENDPOINT].split(":")
    assert host == "jaeger" and int(port) == col.OTLP_GRPC_PORT and host in services
    assert col.DEFAULT_TRACES_ENDPOINT == env[col.ENV_TRACES_ENDPOINT]
    es = urlparse(env[col.ENV_ES_URL])
    assert es.hostname in services and es.port == 9200 and env[col.ENV_ES_URL] == col.DEFAULT_ES_URL
    assert services["es-setup"]["environment"][col.ENV_ES_URL] == env[col.ENV_ES_URL]
    assert 9200 in _published(services["elasticsearch"])
    tempo_host, tempo_port = collector_config["exporters"]["otlp/tempo"]["endpoint"].split(":")
    tempo_config = load_yaml(COMPOSE_DIR / "tempo" / "tempo.yaml")
    assert tempo_host in services
    assert tempo_config["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == f"0.0.0.0:{tempo_port}"
    # Prometheus scrapes the collector's exporter and its own metrics on the configured ports.
    prom = load_yaml(COMPOSE_DIR / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["agentwatch"]["static_configs"][0]["targets"] == [f"otelcol:{col.PROMETHEUS_PORT}"]
    assert jobs["agentwatch"]["honor_labels"] is True
    assert jobs["otelcol"]["static_configs"][0]["targets"] == [f"otelcol:{col.TELEMETRY_PORT}"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert 9093 in _published(services["alertmanager"]) and 9090 in _published(services["prometheus"])
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]


def test_prometheus_loads_the_agentwatch_rules(compose):
    prom = load_yaml(COMPOSE_DIR / "prometheus" / "prometheus.yml")
    mounts = {target: host for host, target in _binds(compose["services"]["prometheus"])}
    (pattern,) = prom["rule_files"]
    folder, glob = pattern.rsplit("/", 1)
    host = mounts[folder]
    assert host == REPO / "alerts" / "rules"
    assert {p.name for p in host.glob(glob)} == {"agentwatch-recording.yaml", "agentwatch-alerts.yaml"}
    assert mounts["/etc/prometheus/prometheus.yml"] == COMPOSE_DIR / "prometheus" / "prometheus.yml"


def test_alertmanager_runs_the_generated_routing_with_secret_files(compose):
    service = compose["services"]["alertmanager"]
    mounts = {target: host for host, target in _binds(service)}
    config_arg = next(a for a in service["command"] if a.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    folder = config_path.rsplit("/", 1)[0]
    assert mounts[folder] == REPO / "alerts" / "alertmanager"
    config = load_yaml(mounts[folder] / "alertmanager.yml")
    for pattern in config["templates"]:
        assert list((mounts[folder]).glob(pattern)), pattern
    am = load().alertmanager
    for secret_file in (am.pagerduty_routing_key_file, am.slack_api_url_file):
        secret_dir, name = secret_file.rsplit("/", 1)
        assert secret_dir in mounts, f"{secret_file} is not mounted"
        placeholder = mounts[secret_dir] / name
        assert placeholder.is_file() and "REPLACE" in placeholder.read_text().upper()


def test_grafana_provisions_the_dashboards_and_datasources_of_this_stack(compose):
    service = compose["services"]["grafana"]
    mounts = {target: host for host, target in _binds(service)}
    provider = load_yaml(mounts["/etc/grafana/provisioning/dashboards"] / "agentwatch.yaml")
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == REPO / "dashboards"  # the whole folder: every dashboard the generator writes
    assert list((REPO / "dashboards").glob("*.json"))
    published = {name: {int(p.split(":")[-1]) for p in svc.get("ports", [])} | _listening(name)
                 for name, svc in compose["services"].items()}
    datasources = mounts["/etc/grafana/provisioning/datasources"]
    files = sorted(datasources.glob("*.yaml"))
    assert files
    for file in files:
        for ds in load_yaml(file)["datasources"]:
            url = urlparse(ds["url"])
            assert url.hostname in compose["services"], f"{file.name}: {ds['url']} is no service of the stack"
            assert url.port in published[url.hostname], f"{file.name}: {ds['url']}: nothing listens there"
        for ds in load_yaml(file)["datasources"]:
            if ds["type"] == "prometheus":
                prom = load_yaml(COMPOSE_DIR / "prometheus" / "prometheus.yml")
                assert ds["jsonData"]["timeInterval"] == prom["global"]["scrape_interval"]


def _listening(service: str) -> set[int]:
    """Ports a service listens on inside the network without publishing them."""
    return {"tempo": {3200, 4317}, "jaeger": {4317, 16686}, "elasticsearch": {9200}, "prometheus": {9090},
            "alertmanager": {9093}, "grafana": {3000}, "otelcol": {4317, 4318, 8888, 8889}}.get(service, set())


def test_elasticsearch_security_is_off_only_on_loopback_and_documented(compose):
    es = compose["services"]["elasticsearch"]
    assert es["environment"]["xpack.security.enabled"] == "false"
    assert set(_published(es).values()) == {"127.0.0.1"}
    readme = (COMPOSE_DIR / "README.md").read_text()
    assert "xpack.security.enabled" in readme and "ELASTIC_PASSWORD" in readme
    assert col.ENV_ES_PASSWORD in readme
