"""Settings read from the environment once, so the hot path never parses environment variables."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from agentwatch import semconv

_log = logging.getLogger("agentwatch")

DEFAULT_CONTENT_MAX_LENGTH = 8192
DEFAULT_MODEL_LABEL_LIMIT = 200


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        _log.warning("agentwatch: %s=%r is not a positive integer; using %d", name, raw, default)
        return default
    return value


@dataclass(frozen=True)
class Settings:
    capture_content: bool = False
    content_max_length: int = DEFAULT_CONTENT_MAX_LENGTH
    inject_stream_usage: bool = False
    json_logs: str | None = None  # "stdout", "stderr" or a file path; None = off
    model_label_limit: int = DEFAULT_MODEL_LABEL_LIMIT

    @classmethod
    def from_env(cls) -> "Settings":
        stream_usage = (os.environ.get(semconv.ENV_STREAM_USAGE) or "").strip().lower()
        if stream_usage not in {"", "inject", "off", "none"}:
            _log.warning(
                "agentwatch: %s=%r is not one of inject|off; leaving requests unchanged",
                semconv.ENV_STREAM_USAGE, stream_usage,
            )
        return cls(
            capture_content=_flag(os.environ.get(semconv.ENV_CAPTURE_CONTENT)),
            content_max_length=_positive_int(semconv.ENV_CONTENT_MAX_LENGTH, DEFAULT_CONTENT_MAX_LENGTH),
            inject_stream_usage=stream_usage == "inject",
            json_logs=(os.environ.get(semconv.ENV_JSON_LOGS) or "").strip() or None,
            model_label_limit=_positive_int("AGENTWATCH_MODEL_LABEL_LIMIT", DEFAULT_MODEL_LABEL_LIMIT),
        )
