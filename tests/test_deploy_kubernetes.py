"""deploy/kubernetes: the kustomize base, component and overlays, checked statically (no cluster here).

Every file a kustomization references exists; each overlay builds (`kubectl kustomize`, kustomize v5, when
kubectl is installed); built-in kinds validate strictly against the Kubernetes schemas (kubernetes-validate);
the Prometheus Operator resources match the generated rules and routing; ports, names and config files agree
between the collector configs, the workloads, the Services, the HPA and the ServiceMonitor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from agentwatch.tooling import generate as gen
from agentwatch import config
from agentwatch.tooling.generate import alertmanager, alerts, deploy
from agentwatch.tooling.generate import collector as col
from support.deploy_helpers import K8S, OVERLAYS, REPO, generated, image_problems, load_manifests, load_yaml

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

KUBE_VERSION = "1.32"  # oldest Kubernetes the manifests target (HPA v2, PDB v1, internalTrafficPolicy GA)
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "components", "configMapGenerator",
                      "secretGenerator", "generatorOptions", "images", "patches", "replicas"}


# --- the files ----------------------------------------------------------------------------------------
def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def test_generated_parts_match_their_generators():
    mine = {rel: text for rel, text in generated().items() if rel.startswith("deploy/")}
    assert mine, "the deploy generator produced nothing"
    problems = gen.drift(REPO, mine, gen.DEPLOY_OWNED)
    assert not problems, f"run `agentwatch generate`: {[str(p) for p in problems]}"
    # The copies kustomize needs are byte for byte their sources.
    files = generated()
    assert files[f"{deploy.GENERATED_DIR}/collector/agent.yaml"] == files[col.AGENT_FILE]
    assert files[f"{deploy.GENERATED_DIR}/collector/gateway.yaml"] == files[col.GATEWAY_FILE]
    assert files[f"{deploy.REMOTE_WRITE_DIR}/gateway-remotewrite.yaml"] == files[col.GATEWAY_REMOTE_WRITE_FILE]
    dashboards = sorted(p.name for p in (REPO / "dashboards").glob("*.json"))
    copies = sorted(p.name for p in (REPO / deploy.GENERATED_DIR / "dashboards").glob("*.json"))
    assert dashboards and copies == dashboards


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_file_a_kustomization_references_exists(path):
    data = load_yaml(path)
    assert set(data) <= KUSTOMIZATION_KEYS, f"unknown keys {set(data) - KUSTOMIZATION_KEYS}"
    expected_kind = "Component" if "components" in path.parts else "Kustomization"
    assert data["kind"] == expected_kind
    assert data["apiVersion"] == ("kustomize.config.k8s.io/v1alpha1" if expected_kind == "Component"
                                  else "kustomize.config.k8s.io/v1beta1")
    root = path.parent
    for entry in data.get("resources", []) + data.get("components", []):
        target = (root / entry).resolve()
        assert target.exists(), f"{entry} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{entry} is a folder without kustomization.yaml"
    for generator in data.get("configMapGenerator", []) + data.get("secretGenerator", []):
        for spec in generator.get("files", []):
            file = (root / spec.split("=", 1)[-1]).resolve()
            assert file.is_file(), f"{generator['name']}: {spec} does not exist"
            assert root.resolve() in file.parents, f"{spec} is outside the kustomization root (kustomize refuses it)"
    for patch in data.get("patches", []):
        if "path" in patch:
            assert (root / patch["path"]).is_file()
        else:
            assert yaml.safe_load(patch["patch"]), "empty inline patch"


def test_resource_files_are_kubernetes_objects():
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "collector" in path.parts or path.name.startswith("gateway-remote"):
            continue
        for doc in load_manifests(path.read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            assert doc["metadata"].get("name"), path


# --- the built overlays -------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=OVERLAYS)
def built(request) -> tuple[str, list[dict]]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (with its built-in kustomize) is not installed: overlays not built")
    result = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / request.param)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return request.param, load_manifests(result.stdout)


def _one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: found {len(found)}"
    return found[0]


def _configmap(docs: list[dict], prefix: str) -> dict:
    found = [d for d in docs if d["kind"] == "ConfigMap" and re.fullmatch(rf"{prefix}(-[a-z0-9]{{10}})?",
                                                                           d["metadata"]["name"])]
    assert len(found) == 1, prefix
    return found[0]


def _bytes(quantity: str) -> float:
    """A Kubernetes or Go memory quantity (512Mi, 2Gi, 800MiB) in bytes."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i)B?", quantity).groups()
    return float(number) * 1024 ** ("KMG".index(unit[0]) + 1)


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_built_objects_are_namespaced_and_valid(built):
    overlay, docs = built
    kv = pytest.importorskip("kubernetes_validate")
    names = set()
    for doc in docs:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in names, f"{overlay}: {key} twice"
        names.add(key)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == deploy.NAMESPACE, key
        try:
            kv.validate(doc, KUBE_VERSION, strict=True)
        except kv.SchemaNotFoundError:
            assert doc["apiVersion"].startswith("monitoring.coreos.com/"), f"{key}: no schema and no known CRD"
        except kv.ValidationError as exc:
            raise AssertionError(f"{overlay}: {key}: {exc.message}") from None


def test_images_are_pinned(built):
    overlay, docs = built
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            assert image_problems(container["image"]) == [], f"{overlay}: {doc['metadata']['name']}"
            if container["name"] == "otelcol":
                assert container["image"] == col.OTELCOL_IMAGE
            if container["name"] == "es-setup":
                assert container["image"].endswith(f"agentwatch:{version('agentwatch')}")


def test_workloads_run_the_generated_collector_configs(built):
    overlay, docs = built
    gateway_file = col.GATEWAY_REMOTE_WRITE_FILE if overlay == "remote-write" else col.GATEWAY_FILE
    expected = {"agentwatch-agent": ("agentwatch-agent-config", col.AGENT_FILE),
                "agentwatch-gateway": ("agentwatch-gateway-config", gateway_file)}
    for workload in (_one(docs, "DaemonSet", "agentwatch-agent"), _one(docs, "Deployment", "agentwatch-gateway")):
        name = workload["metadata"]["name"]
        prefix, source = expected[name]
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (arg,) = [a for a in container["args"] if a.startswith("--config=")]
        mount_dir, key = arg.split("=", 1)[1].rsplit("/", 1)
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == mount_dir]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        configmap = _configmap(docs, prefix)
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        assert configmap["data"][key] == generated()[source], f"{overlay}: {name} runs a stale config"
        config = yaml.safe_load(configmap["data"][key])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["otlp-grpc"] == col.OTLP_GRPC_PORT and ports["otlp-http"] == col.OTLP_HTTP_PORT
        assert ports["health"] == int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
        assert ports["otel-metrics"] == col.TELEMETRY_PORT
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "health"
        if "prometheus" in config["exporters"]:
            assert ports["prom-metrics"] == col.PROMETHEUS_PORT
        assert _matches(workload["spec"]["selector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"])
        limits = container["resources"]["limits"]
        assert "memory" in limits  # memory_limiter works in percent of the container's limit
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert _bytes(env["GOMEMLIMIT"]) <= 0.85 * _bytes(limits["memory"]), f"{overlay}: {name} GOMEMLIMIT"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_agents_find_every_gateway_through_the_headless_service(built):
    overlay, docs = built
    agent = _one(docs, "DaemonSet", "agentwatch-agent")
    gateway = _one(docs, "Deployment", "agentwatch-gateway")
    env = {e["name"]: e.get("value") for e in agent["spec"]["template"]["spec"]["containers"][0]["env"]}
    headless = _one(docs, "Service", env[col.ENV_GATEWAY_HOSTNAME])
    assert headless["metadata"]["name"] == col.GATEWAY_HEADLESS_SERVICE
    assert headless["spec"]["clusterIP"] == "None"
    assert _matches(headless["spec"]["selector"], gateway["spec"]["template"]["metadata"]["labels"])
    assert [p["port"] for p in headless["spec"]["ports"]] == [col.OTLP_GRPC_PORT]
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "k8s.node.name=$(K8S_NODE_NAME)"
    assert yaml.safe_load(env[col.ENV_ALLOWED_CONTENT_KEYS]) == []
    # Applications reach the agent on their own node.
    service = _one(docs, "Service", "agentwatch-agent")
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    monitor = _one(docs, "PodMonitor", "agentwatch-agent")
    assert _matches(monitor["spec"]["selector"]["matchLabels"], agent["spec"]["template"]["metadata"]["labels"])
    ports = {p["name"]: p["containerPort"] for p in agent["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert [ports[e["port"]] for e in monitor["spec"]["podMetricsEndpoints"]] == [col.TELEMETRY_PORT]
    assert _matches(service["spec"]["selector"], agent["spec"]["template"]["metadata"]["labels"])
    assert {p["port"] for p in service["spec"]["ports"]} == {col.OTLP_GRPC_PORT, col.OTLP_HTTP_PORT}


def test_gateway_scaling_and_scraping(built):
    overlay, docs = built
    gateway = _one(docs, "Deployment", "agentwatch-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    hpa = _one(docs, "HorizontalPodAutoscaler", "agentwatch-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "agentwatch-gateway"}
    assert 1 <= hpa["spec"]["minReplicas"] <= gateway["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    if overlay != "dev":
        assert hpa["spec"]["minReplicas"] >= 2
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"]  # Utilization targets need requests
    pdb = _one(docs, "PodDisruptionBudget", "agentwatch-gateway")
    assert _matches(pdb["spec"]["selector"]["matchLabels"], labels)
    monitor = _one(docs, "ServiceMonitor", "agentwatch-gateway")
    services = [d for d in docs if d["kind"] == "Service" and _matches(monitor["spec"]["selector"]["matchLabels"],
                                                                        d["metadata"]["labels"])]
    assert services
    for service in services:
        assert _matches(service["spec"]["selector"], labels)
    ports = {p["name"]: p for s in services for p in s["spec"]["ports"]}
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    for name in endpoints:
        assert name in ports, f"ServiceMonitor port {name} is on no selected Service"
    if overlay == "remote-write":
        assert set(endpoints) == {"otel-metrics"}
    else:
        assert endpoints["prom-metrics"]["honorLabels"] is True
        assert ports["prom-metrics"]["port"] == col.PROMETHEUS_PORT
    assert ports["otel-metrics"]["port"] == col.TELEMETRY_PORT
    # Backends and credentials: addresses from the ConfigMap, secrets only through secretKeyRef.
    backends = _configmap(docs, "agentwatch-backends")["data"]
    assert backends[col.ENV_TRACES_ENDPOINT] and backends[col.ENV_ES_URL]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert set(refs) == {col.ENV_ES_USERNAME, col.ENV_ES_PASSWORD, col.ENV_ES_API_KEY}
    assert all(ref["optional"] is True for ref in refs.values())
    if overlay == "remote-write":
        assert backends[col.ENV_REMOTE_WRITE_URL].startswith("http")
    if overlay == "dev":
        assert backends[col.ENV_SAMPLING_PERCENTAGE] == "100"


def test_prometheus_rule_is_the_generated_rules(built):
    overlay, docs = built
    rule = _one(docs, "PrometheusRule", "agentwatch")
    files = generated()
    expected = [g for rel in (alerts.RECORDING_FILE, alerts.ALERTS_FILE) for g in yaml.safe_load(files[rel])["groups"]]
    groups = rule["spec"]["groups"]
    assert [g["name"] for g in groups] == [g["name"] for g in expected]
    namespace = rule["metadata"]["namespace"]
    for got, want in zip(groups, expected):
        assert len(got["rules"]) == len(want["rules"])
        for r, w in zip(got["rules"], want["rules"]):
            assert r["expr"].strip() == w["expr"].strip()
            if "alert" in w:
                # An AlertmanagerConfig routes only alerts labelled with its own namespace.
                assert r["labels"] == {**w["labels"], "namespace": namespace}
                assert r["annotations"] == w["annotations"] and r.get("for") == w.get("for")


def _route_receivers(route: dict) -> set[str]:
    found = {route["receiver"]} if route.get("receiver") else set()
    for child in route.get("routes", []):
        found |= _route_receivers(child)
    return found


def test_alertmanager_config_is_the_generated_routing(built):
    overlay, docs = built
    amc = _one(docs, "AlertmanagerConfig", "agentwatch")
    source = yaml.safe_load(generated()[alertmanager.CONFIG_FILE])
    spec = amc["spec"]
    receivers = {r["name"]: r for r in spec["receivers"]}
    assert set(receivers) == {r["name"] for r in source["receivers"]} == set(alertmanager.RECEIVERS)
    assert _route_receivers(spec["route"]) <= set(receivers)
    assert spec["route"]["groupBy"] == source["route"]["group_by"]
    for route, src in zip(spec["route"]["routes"], source["route"]["routes"]):
        assert [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in route["matchers"]] == src["matchers"]
    pager = receivers[alertmanager.PAGER]["pagerdutyConfigs"][0]
    chat = receivers[alertmanager.CHAT]["slackConfigs"][0]
    assert pager["routingKey"] == {"name": deploy.SECRET_NAME, "key": "pagerduty-routing-key"}
    assert chat["apiURL"] == {"name": deploy.SECRET_NAME, "key": "slack-webhook-url"}
    assert len(spec["inhibitRules"]) == len(source["inhibit_rules"])
    for rule in spec["inhibitRules"]:
        for m in rule["sourceMatch"] + rule["targetMatch"]:
            assert m["matchType"] in ("=", "!=", "=~", "!~")
    # The templates every receiver uses ship as a ConfigMap for the Alertmanager resource to load.
    templates = _one(docs, "ConfigMap", deploy.TEMPLATES_CONFIGMAP)
    assert templates["data"]["agentwatch.tmpl"] == generated()[alertmanager.TEMPLATE_FILE]
    # No secret value in the cluster objects: the Secret is created by hand.
    assert not [d for d in docs if d["kind"] == "Secret"]


def test_dashboard_configmaps_for_the_grafana_sidecar(built):
    overlay, docs = built
    dashboards = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "dashboards").glob("*.json")}
    found = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (name, text), = doc["data"].items()
            found[name] = text
            assert len(text.encode()) < 1024 * 1024  # a ConfigMap holds at most 1 MiB
    assert found == dashboards


def test_es_setup_job_runs_agentwatch_es_setup(built):
    overlay, docs = built
    job = _one(docs, "Job", "agentwatch-es-setup")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["agentwatch", "es", "setup"]
    from agentwatch.tooling.cli import main

    assert "setup" in main.commands["es"].commands
    backends = _configmap(docs, "agentwatch-backends")
    assert {"configMapRef": {"name": backends["metadata"]["name"]}} in container["envFrom"]
    assert backends["data"][config.ENV_ES_URL]
    refs = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {config.ENV_ES_USERNAME, config.ENV_ES_PASSWORD, config.ENV_ES_API_KEY}


def test_no_floating_images_or_secrets_in_the_sources():
    for path in sorted(K8S.rglob("*.yaml")):
        for match in re.finditer(r"^\s*image:\s*(\S+)", path.read_text(), re.M):
            assert image_problems(match.group(1)) == [], path
