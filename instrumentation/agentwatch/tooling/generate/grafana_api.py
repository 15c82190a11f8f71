"""A client of Grafana's HTTP API: uploads the generated dashboards (`agentwatch dashboards push`).

    client = GrafanaClient("https://grafana.example.com", token)
    folder_uid = client.folder_uid("agentwatch")          # found by title, created when missing
    client.push(dashboard_json, folder_uid, overwrite=True)

Requests: `GET /api/folders` (find the folder by title), `POST /api/folders` `{"title": ...}` (create it),
`POST /api/dashboards/db` `{"dashboard": {...}, "folderUid": ..., "overwrite": ..., "message": ...}`, each with
`Authorization: Bearer <token>` (a service account token or API key). Every failure is a GrafanaError with one
line that says what to do; the token never appears in a message.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from agentwatch import config
from agentwatch.tooling import urls

ENV_TOKEN = config.ENV_GRAFANA_API_TOKEN
PUSH_MESSAGE = "agentwatch dashboards push"
TIMEOUT = 15.0


class GrafanaError(Exception):
    """A push that failed: one line, no token."""


def read_token(token_file: str | None) -> str:
    """The API token: from `token_file` when given, else from $GRAFANA_API_TOKEN."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GrafanaError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from None
        if not token:
            raise GrafanaError(f"the token file {token_file} is empty")
        return token
    token = config.grafana_token()
    if not token:
        raise GrafanaError(f"no Grafana API token: set {ENV_TOKEN} or pass --token-file FILE "
                           "(a service account token with the Editor role)")
    return token


def check_url(url: str) -> str:
    """The Grafana base URL without a trailing slash; a clear error when it is not an http(s) URL."""
    try:
        return urls.base_url(url, option="--url", service="Grafana", example="http://localhost:3000")
    except ValueError as exc:
        raise GrafanaError(str(exc)) from None


class GrafanaClient:
    def __init__(self, url: str, token: str, timeout: float = TIMEOUT):
        self.url = check_url(url)
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GrafanaClient({urls.display(self.url)!r})"

    # --- HTTP
    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        where = urls.display(self.url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = getattr(reason, "strerror", None) or str(reason)
            raise GrafanaError(f"cannot reach Grafana at {where}: {text}") from None
        except (socket.timeout, TimeoutError):
            raise GrafanaError(f"Grafana at {where} did not answer within {self.timeout:g}s") from None
        except (OSError, ValueError) as exc:
            raise GrafanaError(f"cannot reach Grafana at {where}: {exc}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise GrafanaError(f"{where} answered {method} {path} with something that is not JSON: "
                               "is --url Grafana's address?") from None

    def _http_error(self, exc: urllib.error.HTTPError, method: str, path: str) -> GrafanaError:
        where = urls.display(self.url)
        path = path.split("?")[0]
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        message = payload.get("message") if isinstance(payload, dict) else None
        detail = f": {message}" if message else ""
        if exc.code == 401:
            return GrafanaError(f"Grafana at {where} rejected the API token (401 Unauthorized): check "
                                f"{ENV_TOKEN} or --token-file")
        if exc.code == 403:
            return GrafanaError(f"the API token may not {method} {path} on {where} (403 Forbidden{detail}): "
                                "it needs the Editor role")
        if exc.code == 412:
            status = payload.get("status") if isinstance(payload, dict) else None
            return GrafanaError(f"version conflict (412{', ' + status if status else ''}{detail}): the dashboard "
                                "exists in Grafana or was changed there; rerun with --overwrite to replace it")
        if exc.code == 404:
            return GrafanaError(f"{where} has no {path} (404): is --url Grafana's address (with its sub-path, "
                                "if any)?")
        return GrafanaError(f"Grafana at {where} answered {method} {path} with {exc.code} {exc.reason}{detail}")

    # --- API
    def folder_uid(self, title: str) -> str:
        """The UID of the folder titled `title`, created when there is none."""
        page = 1
        while True:
            folders = self._request("GET", f"/api/folders?limit=1000&page={page}")
            if not isinstance(folders, list):
                raise GrafanaError(f"unexpected answer to GET /api/folders from {urls.display(self.url)}")
            for folder in folders:
                if isinstance(folder, dict) and folder.get("title") == title and folder.get("uid"):
                    return str(folder["uid"])
            if len(folders) < 1000:
                break
            page += 1
        created = self._request("POST", "/api/folders", {"title": title})
        if not isinstance(created, dict) or not created.get("uid"):
            raise GrafanaError(f"Grafana at {urls.display(self.url)} did not return the new folder's uid")
        return str(created["uid"])

    def push(self, dashboard: dict[str, Any], folder_uid: str | None, overwrite: bool) -> dict[str, Any]:
        """Creates or updates one dashboard; returns Grafana's answer (uid, url, version, status)."""
        body: dict[str, Any] = {"dashboard": {k: v for k, v in dashboard.items() if k not in ("id", "version")},
                                "overwrite": overwrite, "message": PUSH_MESSAGE}
        if folder_uid:
            body["folderUid"] = folder_uid
        answer = self._request("POST", "/api/dashboards/db", body)
        if not isinstance(answer, dict):
            raise GrafanaError(f"unexpected answer to POST /api/dashboards/db from {urls.display(self.url)}")
        return answer

    def dashboard_url(self, answer: dict[str, Any]) -> str:
        path = answer.get("url") or f"/d/{quote(str(answer.get('uid', '')))}"
        base = urlsplit(urls.display(self.url))
        return urlunsplit((base.scheme, base.netloc, path, "", "")) if path.startswith("/") else path
