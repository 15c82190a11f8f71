"""Grafana dashboards: committed == generated, a lint in the spirit of grafana/dashboard-linter, thresholds that
follow the table (and a user's override), provisioning files, and `agentwatch dashboards build|push` against a
local stand-in for Grafana's HTTP API.

The data test (every query returns data from a real Prometheus) is in test_dashboards_data.py.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from agentwatch import semconv as sc
from agentwatch import thresholds
from agentwatch.tooling.cli import main
from agentwatch.tooling.generate import dashboards as gen
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.links import DASHBOARD_UIDS

from support.alerting import REPO, free_port, generate as run_generate

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

FILES = {"agent-overview.json": "agents", "llm-calls.json": "llm", "tools.json": "tools", "cost.json": "cost"}
DS = {"type": "prometheus", "uid": "${datasource}"}
SIGNAL_PANEL_TITLES = dict(gen.SIGNAL_TITLES)


@pytest.fixture(autouse=True)
def _no_user_override(monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)


def load(root: Path = REPO) -> dict[str, dict[str, Any]]:
    return {name: json.loads((root / "dashboards" / name).read_text()) for name in FILES}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that is not a row, including those inside collapsed rows."""
    out = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels") or [])
        else:
            out.append(panel)
    return out


def exprs(board: dict[str, Any]):
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel, target["expr"]


def stat_of(board: dict[str, Any], title: str) -> dict[str, Any]:
    (panel,) = [p for p in panels(board) if p["title"] == title]
    return panel


# --- a small PromQL scanner, enough for the lint --------------------------------------------------------
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_TOKEN = re.compile(r"(?P<range>\[[^\]]*\])|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<open>\()|(?P<close>\))|\S")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_COUNTER_FUNCTIONS = {"rate", "irate", "increase"}


def selectors(expr: str) -> list[tuple[str, str | None, bool]]:
    """(metric name, innermost enclosing function, followed by a range) for every series selector."""
    text = _MATCHERS.sub("", _GROUPING.sub("", expr))
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    stack: list[str] = []
    found = []
    for i, (kind, value) in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind == "open":
            previous = tokens[i - 1] if i else (None, "")
            stack.append(previous[1] if previous[0] == "ident" else "")
        elif kind == "close":
            stack.pop()
        elif kind == "ident" and following[0] != "open" and value.lower() not in _KEYWORDS:
            function = next((f for f in reversed(stack) if f), None)
            found.append((value, function, following[0] == "range"))
    assert not stack, f"unbalanced parentheses in {expr!r}"
    return found


def range_windows(expr: str) -> list[tuple[str, str]]:
    """(function, window) of every rate()/irate()/increase() call."""
    return re.findall(r"\b(rate|irate|increase)\([^\[\]()]*\[([^\]]+)\]\)", expr)


COUNTERS = set(sc.PROM_COUNTERS) | {h + suffix for h in sc.PROM_HISTOGRAMS
                                    for suffix in (sc.PROM_BUCKET_SUFFIX, sc.PROM_COUNT_SUFFIX, sc.PROM_SUM_SUFFIX)}


def test_the_scanner_sees_counters_outside_rate():
    assert selectors('sum by (a) (rate(x_total{a="1"}[5m])) / y') == [("x_total", "rate", True), ("y", None, False)]
    assert selectors("predict_linear(sum(increase(c_total[1d]))[6h:], 86400)") == [("c_total", "increase", True)]
    assert selectors("histogram_quantile(0.9, sum by (le) (h_bucket))") == [("h_bucket", "sum", False)]


# --- committed == generated ---------------------------------------------------------------------------
def test_generate_check_covers_the_dashboards(tmp_path):
    out = run_generate(tmp_path / "out")
    board = out / "dashboards" / "tools.json"
    board.write_text(board.read_text().replace("Tool latency p95 by tool", "Tool latency"))
    (out / "dashboards/provisioning/datasources/jaeger.yaml").unlink()
    (out / "dashboards/old-dashboard.json").write_text("{}\n")
    result = CliRunner().invoke(main, ["generate", "--check", "--out-dir", str(out)])
    assert result.exit_code == 1
    assert "dashboards/tools.json: differs" in result.output
    assert "dashboards/provisioning/datasources/jaeger.yaml: missing" in result.output
    assert "dashboards/old-dashboard.json: stale" in result.output
    assert "dashboards/cost.json" not in result.output


def test_committed_dashboards_match_the_generator():
    files = gen.artifacts(thresholds.load())
    assert sorted(f for f in files if f.endswith(".json")) == sorted(f"dashboards/{f}" for f in FILES)
    for rel, text in files.items():
        assert (REPO / rel).read_text() == text, f"{rel} drifted: run `agentwatch generate` and commit"


def test_dashboards_build_writes_only_the_dashboards(tmp_path):
    out = run_generate(tmp_path / "out")
    (out / "dashboards/cost.json").unlink()
    (out / "dashboards/stale.json").write_text("{}")
    result = CliRunner().invoke(main, ["dashboards", "build", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "updated dashboards/cost.json" in result.output
    assert "dashboards/stale.json (removed)" in result.output
    assert (out / "alerts/rules/agentwatch-alerts.yaml").is_file()  # other generators' files are left alone
    assert CliRunner().invoke(main, ["generate", "--check", "--out-dir", str(out)]).exit_code == 0


def test_json_is_deterministic_and_loads_into_the_sdk_model():
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    assert gen.artifacts(thresholds.load()) == gen.artifacts(thresholds.load())
    for name, board in load().items():
        back = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
        assert back == board, name


# --- lint (grafana/dashboard-linter's rules, and ours) --------------------------------------------------
def test_uids_titles_and_tags():
    boards = load()
    assert {b["uid"] for b in boards.values()} == set(DASHBOARD_UIDS.values())
    for name, board in boards.items():
        assert board["uid"] == DASHBOARD_UIDS[FILES[name]]
        assert board["title"].startswith("agentwatch / ") and board["description"]
        assert board["tags"] == ["agentwatch"]
        assert "id" not in board and "version" not in board
        links = board["links"]
        assert links and links[0]["type"] == "dashboards" and links[0]["includeVars"] and links[0]["keepTime"]


def test_one_prometheus_datasource_variable_used_by_every_panel():
    for name, board in load().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        prometheus = [v for v in variables.values() if v["type"] == "datasource" and v["query"] == "prometheus"]
        assert [v["name"] for v in prometheus] == ["datasource"], name
        for panel in panels(board):
            assert panel["datasource"] == DS, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DS, (name, panel["title"])
        for var in ("job", "agent", "model"):
            if var in variables:
                v = variables[var]
                assert v["type"] == "query" and v["datasource"] == DS
                assert v["includeAll"] and v["multi"] and v["allValue"] == ".*", (name, var)
        assert "job" in variables, name
        text = json.dumps(board)
        assert gen.DATASOURCE_UIDS["prometheus"] not in text, "a hard-coded datasource uid"


def test_variables_by_dashboard():
    names = {n: [v["name"] for v in b["templating"]["list"]] for n, b in load().items()}
    assert names == {
        "agent-overview.json": ["datasource", "job", "agent", "traces", "logs"],
        "llm-calls.json": ["datasource", "job", "model", "traces", "logs"],
        "tools.json": ["datasource", "job", "agent", "traces", "logs"],
        "cost.json": ["datasource", "job", "agent", "model", "traces", "logs"],
    }


def test_every_panel_has_a_title_a_description_a_unit_and_an_id():
    for name, board in load().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids), name
        titles = [p["title"] for p in panels(board)]
        assert len(titles) == len(set(titles)), name
        for panel in panels(board):
            where = (name, panel["title"])
            assert panel["title"].strip(), where
            assert len(panel.get("description", "")) >= 30, where
            assert panel["fieldConfig"]["defaults"].get("unit"), where
            for target in panel["targets"]:
                assert target["refId"] and target["expr"].strip(), where
                assert "legendFormat" in target or target.get("format") == "table", where


def test_rates_use_rate_interval_and_threshold_stats_the_alert_windows():
    table = thresholds.load()
    stats = {gen.signal_expr(table, s): table[s].window for s in thresholds.SIGNALS}
    for name, board in load().items():
        for panel, expr in exprs(board):
            windows = range_windows(expr)
            assert windows or "rate(" not in expr, (name, panel["title"], "unparsed rate")
            for function, window in windows:
                where = (name, panel["title"], expr)
                if function in ("rate", "irate"):
                    allowed = {stats[expr.strip()]} if expr.strip() in stats else {"$__rate_interval"}
                else:  # increase() over the panel's range or interval, or the spend alert's rolling window
                    allowed = {"$__range", "$__interval", "$__rate_interval", q.SPEND_WINDOW}
                assert window in allowed, where


def test_counters_only_inside_rate_or_increase_and_every_name_from_semconv():
    known = COUNTERS | {sc.PROM_ALERTS}
    for name, board in load().items():
        for panel, expr in exprs(board):
            for metric, function, has_range in selectors(expr):
                where = (name, panel["title"], metric)
                assert metric in known, where
                if metric in COUNTERS:
                    assert function in _COUNTER_FUNCTIONS and has_range, where


def test_every_selector_is_narrowed_by_the_variables():
    for name, board in load().items():
        for panel, expr in exprs(board):
            for metric, matchers in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
                where = (name, panel["title"], metric)
                if metric == sc.PROM_ALERTS:
                    assert 'alertstate="firing"' in matchers, where
                    continue
                assert 'job=~"$job"' in matchers, where
                if metric.startswith((sc.PROM_CLIENT_OPERATION_DURATION, sc.PROM_CLIENT_TOKEN_USAGE,
                                      sc.PROM_CLIENT_TIME_TO_FIRST_CHUNK, sc.PROM_LLM_COST,
                                      sc.PROM_PRICING_UNPRICED_CALLS)):
                    assert f'{gen.MODEL}=~"$model"' in matchers, where
                else:
                    assert f'{q.AGENT}=~"$agent"' in matchers, where


def test_the_threshold_stats_run_the_alerts_queries_with_the_tables_colours():
    table = thresholds.load()
    recording = yaml.safe_load((REPO / "alerts/rules/agentwatch-recording.yaml").read_text())
    recorded = {r["record"]: r["expr"] for g in recording["groups"] for r in g["rules"]}
    board = load()["agent-overview.json"]
    first_row = [p for p in board["panels"] if p["type"] == "stat"][:6]
    assert [p["title"] for p in first_row] == [SIGNAL_PANEL_TITLES[s] for s in thresholds.SIGNALS]
    for signal, panel in zip(thresholds.SIGNALS, first_row):
        t = table[signal]
        (target,) = panel["targets"]
        assert target["expr"] == gen.signal_expr(table, signal)
        # the same expression as the alert's recording rule, once the variables' matchers are taken out
        bare = re.sub(r",? ?job=~\"\$job\", gen_ai_agent_name=~\"\$agent\"", "", target["expr"]).replace("{}", "")
        assert bare == recorded[q.SIGNAL_SERIES[signal][0](t.window)].strip(), signal
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["value"] for s in steps] == [None, t.value]
        bad = gen.SEVERITY_COLORS[t.severity]
        assert [s["color"] for s in steps] == ([bad, "green"] if t.comparison == "<" else ["green", bad])
        assert panel["fieldConfig"]["defaults"]["unit"] == gen.UNITS[t.unit]
        assert t.alert in panel["description"] and t.window in panel["description"]
        assert target["instant"] is True
    tools = load()["tools.json"]
    assert stat_of(tools, "Tool-call error rate")["targets"] == first_row[5]["targets"]


def test_links_to_traces_logs_and_runbooks():
    boards = load()
    overview = boards["agent-overview.json"]
    success = stat_of(overview, "Success rate")
    titles = [link["title"] for link in success["fieldConfig"]["defaults"]["links"]]
    assert titles == ["Failed runs of ${__field.labels.gen_ai_agent_name} (traces)",
                      "Failed runs of ${__field.labels.gen_ai_agent_name} (logs)"]
    traces_url = success["fieldConfig"]["defaults"]["links"][0]["url"]
    assert traces_url.startswith("/explore?") and "${traces}" in traces_url and "${__from}" in traces_url
    assert "&&" not in traces_url and " " not in traces_url  # TraceQL is URL-encoded, placeholders are not
    assert "${__field.labels.gen_ai_agent_name}" in traces_url
    logs_url = success["fieldConfig"]["defaults"]["links"][1]["url"]
    assert "${logs}" in logs_url and "event.outcome" in logs_url
    alerts = stat_of(overview, "Firing agentwatch alerts")
    runbook = alerts["fieldConfig"]["defaults"]["links"][0]["url"]
    assert runbook == thresholds.load().alerting.runbook_url.replace("{alert}", "${__data.fields.alertname}")
    # latency panels ask for exemplars (trace links through the datasource's exemplar settings)
    for name, title in (("agent-overview.json", "Run latency p50 / p95 / p99"),
                        ("llm-calls.json", "LLM call latency p50 / p95 / p99"),
                        ("tools.json", "Tool latency p50 / p95 / p99")):
        assert all(t.get("exemplar") for t in stat_of(boards[name], title)["targets"]), title
    for name, board in boards.items():
        linked = [p for p in panels(board) if p["fieldConfig"]["defaults"].get("links")]
        assert len(linked) >= 3, name


def test_provisioning_files():
    root = REPO / "dashboards" / "provisioning"
    provider = yaml.safe_load((root / "dashboards/agentwatch.yaml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["folder"] == "agentwatch" and entry["options"]["path"]
    by_uid = {}
    for path in sorted((root / "datasources").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert data["apiVersion"] == 1
        for ds in data["datasources"]:
            by_uid[ds["uid"]] = ds
    assert set(by_uid) == set(gen.DATASOURCE_UIDS.values())
    assert {ds["type"] for ds in by_uid.values()} == {"prometheus", "tempo", "jaeger", "elasticsearch"}
    prom = by_uid[gen.DATASOURCE_UIDS["prometheus"]]["jsonData"]
    assert prom["exemplarTraceIdDestinations"][0]["datasourceUid"] == gen.DATASOURCE_UIDS["tempo"]
    for kind in ("tempo", "jaeger"):
        to_logs = by_uid[gen.DATASOURCE_UIDS[kind]]["jsonData"]["tracesToLogsV2"]
        assert to_logs["datasourceUid"] == gen.DATASOURCE_UIDS["elasticsearch"] and "trace.id" in to_logs["query"]
    es = by_uid[gen.DATASOURCE_UIDS["elasticsearch"]]["jsonData"]
    assert es["dataLinks"][0]["field"] == "trace.id" and es["timeField"] == "@timestamp"
    for path in root.rglob("*.yaml"):
        assert path.read_text().startswith("# Generated by `agentwatch generate`")


# --- one number changes, the stat panel follows ---------------------------------------------------------
def test_changing_one_threshold_moves_the_stat_panel(tmp_path):
    out = run_generate(tmp_path / "out", {"signals": {"p99_latency": {"value": 45}},
                                           "fleet": {"daily_spend": {"budget_usd": 250}}})
    new, old = load(out), load()
    p99 = stat_of(new["agent-overview.json"], "P99 run latency")
    assert [s["value"] for s in p99["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 45]
    assert "above 45s" in p99["description"]
    line = stat_of(new["agent-overview.json"], "Run latency p50 / p95 / p99")
    assert line["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 45
    assert stat_of(new["agent-overview.json"], "Success rate") == stat_of(old["agent-overview.json"], "Success rate")
    gauge = stat_of(new["cost.json"], "Last 24 h against the daily budget")
    assert gauge["fieldConfig"]["defaults"]["max"] == 250
    assert [s["value"] for s in gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 200, 250]
    # the JSON in the repo keeps the bundled value
    committed = stat_of(old["agent-overview.json"], "P99 run latency")
    assert committed["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 60


def test_a_zero_budget_drops_the_budget_panels(tmp_path):
    out = run_generate(tmp_path / "out", {"fleet": {"daily_spend": {"budget_usd": 0}}})
    titles = [p["title"] for p in panels(load(out)["cost.json"])]
    assert "Last 24 h against the daily budget" not in titles and "Spend today" in titles


# --- push ----------------------------------------------------------------------------------------------
TOKEN = "glsa_TESTTOKEN_0123456789abcdef"


class FakeGrafana:
    """Grafana's folder and dashboard API, as far as `dashboards push` uses it; records every request."""

    def __init__(self, mode: str = "ok", folders: list[dict[str, Any]] | None = None):
        self.mode = mode
        self.folders = list(folders or [{"id": 1, "uid": "other", "title": "Other"}])
        self.requests: list[dict[str, Any]] = []
        self.dashboards: dict[str, dict[str, Any]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                outer.requests.append({"method": method, "path": self.path, "headers": dict(self.headers),
                                       "body": body})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}" or outer.mode == "401":
                    return self._answer(401, {"message": "invalid API key"})
                if method == "GET" and self.path.startswith("/api/folders"):
                    return self._answer(200, outer.folders)
                if method == "POST" and self.path == "/api/folders":
                    if self.headers.get("Content-Type") != "application/json" or not body.get("title"):
                        return self._answer(400, {"message": "bad folder"})
                    folder = {"id": len(outer.folders) + 1, "uid": f"f{len(outer.folders) + 1}",
                              "title": body["title"]}
                    outer.folders.append(folder)
                    return self._answer(200, folder)
                if method == "POST" and self.path == "/api/dashboards/db":
                    return self._save(body)
                return self._answer(404, {"message": "Not found"})

            def _save(self, body: dict[str, Any]) -> None:
                dashboard = body.get("dashboard") or {}
                if set(body) - {"dashboard", "folderUid", "overwrite", "message"} or not dashboard.get("uid"):
                    return self._answer(400, {"message": "bad request"})
                if body.get("folderUid") and body["folderUid"] not in {f["uid"] for f in outer.folders}:
                    return self._answer(400, {"message": "folder not found"})
                uid = dashboard["uid"]
                if outer.mode == "412" or (uid in outer.dashboards and not body.get("overwrite")):
                    return self._answer(412, {"message": "A dashboard with the same uid already exists",
                                              "status": "version-mismatch"})
                version = outer.dashboards.get(uid, {}).get("version", 0) + 1
                outer.dashboards[uid] = {"version": version, "body": body}
                return self._answer(200, {"id": version, "uid": uid, "url": f"/d/{uid}/x", "status": "success",
                                          "version": version, "slug": "x"})

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeGrafana":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def push(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(main, ["dashboards", "push", *args],
                              env={"GRAFANA_API_TOKEN": TOKEN, "AGENTWATCH_THRESHOLDS_FILE": None, **(env or {})})


def test_push_creates_the_folder_and_uploads_every_dashboard():
    with FakeGrafana() as grafana:
        result = push("--url", grafana.url + "/")
        assert result.exit_code == 0, result.output
        assert "4 dashboards pushed to agentwatch" in result.output
        assert f"{grafana.url}/d/agentwatch-agents/x" in result.output
        assert TOKEN not in result.output
        methods = [(r["method"], r["path"].split("?")[0]) for r in grafana.requests]
        assert methods == [("GET", "/api/folders"), ("POST", "/api/folders")] + [("POST", "/api/dashboards/db")] * 4
        assert grafana.requests[1]["body"] == {"title": "agentwatch"}
        folder_uid = grafana.folders[-1]["uid"]
        committed = {b["uid"]: b for b in load().values()}
        for request in grafana.requests[2:]:
            assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
            assert request["headers"]["Content-Type"] == "application/json"
            body = request["body"]
            assert body["folderUid"] == folder_uid and body["overwrite"] is False
            assert body["message"] == "agentwatch dashboards push"
            assert body["dashboard"] == committed[body["dashboard"]["uid"]]
        assert set(grafana.dashboards) == set(DASHBOARD_UIDS.values())

        # a second push without --overwrite is a version conflict; with it, every dashboard is replaced
        result = push("--url", grafana.url)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1].startswith("agentwatch: error: version conflict (412")
        assert "--overwrite" in result.output
        result = push("--url", grafana.url, "--overwrite")
        assert result.exit_code == 0, result.output
        assert [r["method"] for r in grafana.requests[-5:]] == ["GET"] + ["POST"] * 4  # the folder exists now
        assert all(r["body"]["overwrite"] is True for r in grafana.requests[-4:])
        assert {d["version"] for d in grafana.dashboards.values()} == {2}


def test_push_into_an_existing_folder_or_general(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with FakeGrafana(folders=[{"id": 7, "uid": "ops-uid", "title": "Ops"}]) as grafana:
        result = push("--url", grafana.url, "--folder", "Ops", "--token-file", str(token_file),
                      env={"GRAFANA_API_TOKEN": None})
        assert result.exit_code == 0, result.output
        assert [r["path"] for r in grafana.requests if r["method"] == "POST"] == ["/api/dashboards/db"] * 4
        assert {r["body"]["folderUid"] for r in grafana.requests[1:]} == {"ops-uid"}
    with FakeGrafana() as grafana:
        result = push("--url", grafana.url, "--folder", "")
        assert result.exit_code == 0, result.output
        assert all("folderUid" not in r["body"] for r in grafana.requests)
        assert "pushed to General" in result.output


def test_push_with_a_rejected_token_is_one_clear_line_without_the_token():
    with FakeGrafana(mode="401") as grafana:
        result = push("--url", grafana.url)
    assert result.exit_code == 1
    assert result.output.strip() == (f"agentwatch: error: Grafana at {grafana.url} rejected the API token "
                                     "(401 Unauthorized): check GRAFANA_API_TOKEN or --token-file")
    assert TOKEN not in result.output


def test_push_version_conflict_is_one_clear_line():
    with FakeGrafana(mode="412") as grafana:
        result = push("--url", grafana.url)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "agentwatch: error: version conflict (412, version-mismatch: A dashboard with the same uid already "
        "exists): the dashboard exists in Grafana or was changed there; rerun with --overwrite to replace it")


@pytest.mark.parametrize("url, message", [
    ("grafana.example.com", "--url must be Grafana's http(s) address such as http://localhost:3000, "
                            "got 'grafana.example.com'"),
    ("ftp://grafana", "--url must be Grafana's http(s) address"),
    ("http://127.0.0.1:99999", "--url has an invalid port"),
])
def test_push_bad_url(url, message):
    result = push("--url", url)
    assert result.exit_code == 1
    assert result.output.startswith(f"agentwatch: error: {message}")
    assert len(result.output.strip().splitlines()) == 1


def test_push_unreachable_grafana_and_not_grafana():
    port = free_port()
    result = push("--url", f"http://user:hunter2@127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.output.startswith(f"agentwatch: error: cannot reach Grafana at http://127.0.0.1:{port}: ")
    assert "hunter2" not in result.output and len(result.output.strip().splitlines()) == 1
    with FakeGrafana() as grafana:  # a server without Grafana's API under that path
        result = push("--url", grafana.url + "/not-grafana")
    assert result.exit_code == 1
    assert result.output.strip() == (f"agentwatch: error: {grafana.url}/not-grafana has no /api/folders (404): "
                                     "is --url Grafana's address (with its sub-path, if any)?")


def test_push_without_a_token(tmp_path):
    result = push("--url", "http://127.0.0.1:3000", env={"GRAFANA_API_TOKEN": None})
    assert result.exit_code == 1
    assert result.output.strip() == ("agentwatch: error: no Grafana API token: set GRAFANA_API_TOKEN or pass "
                                      "--token-file FILE (a service account token with the Editor role)")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = push("--url", "http://127.0.0.1:3000", "--token-file", str(empty))
    assert result.exit_code == 1 and "is empty" in result.output
    result = push("--url", "http://127.0.0.1:3000", "--token-file", str(tmp_path / "missing"))
    assert result.exit_code == 1 and "cannot read the token file" in result.output
