"""Configuration, read from the environment only by entry points (the CLI, `worker.py`, the API factory).

Every setting has a working local default, so `make up` needs none; a bad value is a clear error at start.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from domain.calendar import CASE_YEARS, SUPPORTED_YEARS

T = TypeVar("T", int, float)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and the rule."""


def _shown(value: object) -> str:
    """A number as a setting's message writes it: an integer in full, a float shortest."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _ranged(env: Mapping[str, str], name: str, default: T, lo: T, hi: T, parse: Callable[[str], T],
            what: str) -> T:
    """The setting `name` parsed by `parse` and within [lo, hi]; `default` when unset or empty."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be {what}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={_shown(value)}: must be between {_shown(lo)} and {_shown(hi)}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _ranged(env, name, default, lo, hi, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _ranged(env, name, default, lo, hi, float, "a number (seconds)")


def _proxies(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (`10.0.0.5`, `10.0.0.0/24`), each checked here so a typo stops the
    start instead of silently trusting nobody (or everybody)."""
    out = []
    for part in (env.get(name) or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not an IP address or network") from None
    return tuple(out)


def _address(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={raw!r}: must be HOST:PORT")
    return raw


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    """An IP address or a host name to bind to (`0.0.0.0` listens on every interface)."""
    raw = (env.get(name) or "").strip() or default
    try:
        ipaddress.ip_address(raw)
        return raw
    except ValueError:
        pass
    labels = raw.split(".")
    if len(raw) > 253 or not all(label and len(label) <= 63 and label.replace("-", "").isalnum()
                                 and label.isascii() and not label.startswith("-") for label in labels):
        raise ConfigError(f"{name}={raw!r}: must be an IP address or a host name")
    return raw


def _otlp_traces(env: Mapping[str, str]) -> str | None:
    """The OTLP traces endpoint, from OpenTelemetry's own variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as
    given, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; None when neither is set or traces are off
    (`OTEL_TRACES_EXPORTER=none`, `OTEL_SDK_DISABLED=true`). Only the HTTP/protobuf protocol is spoken."""
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return None
    exporter = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    if exporter == "none":
        return None
    if exporter != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={exporter!r}: must be otlp or none")
    endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    name = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    if not endpoint:
        base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
        if not base:
            return None
        endpoint, name = base.rstrip("/") + "/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={endpoint!r}: must be an http:// or https:// URL")
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = (env.get(var) or "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise ConfigError(f"{var}={protocol!r}: danvan exports traces over http/protobuf only")
            break
    return endpoint


def _allow_hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated host names (`hooks.local`) or IP addresses and networks (`127.0.0.1`, `10.0.0.0/8`), each
    checked here; names lower-cased, networks written as `ipaddress` writes them."""
    out = []
    for part in (env.get(name) or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
            continue
        except ValueError:
            pass
        labels = part.lower().rstrip(".").split(".")
        if len(part) > 253 or not all(label and len(label) <= 63 and label.isascii()
                                      and label.replace("-", "").isalnum() for label in labels):
            raise ConfigError(f"{name}: {part!r} is not a host name, an IP address or an IP network")
        out.append(".".join(labels))
    return tuple(dict.fromkeys(out))


#: The media types a case's files may have by default (as sniffed from their content, `api.attachments`): PDF,
#: the scanners' images, and the office documents the bodies write (Word's and OpenDocument's).
ATTACHMENT_TYPES = (
    "application/pdf", "image/jpeg", "image/png", "image/tiff",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.oasis.opendocument.text",
)
_MEDIA_TYPE = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")


def _media_types(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated media types (`application/pdf,image/png`), each checked; `default` when unset."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    out = []
    for part in raw.split(","):
        part = part.strip().lower()
        if not _MEDIA_TYPE.match(part):
            raise ConfigError(f"{name}: {part!r} is not a media type (type/subtype)")
        out.append(part)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Settings:
    """All the knobs of a danvan process."""

    home: Path
    database_url: str | None
    temporal_address: str
    temporal_namespace: str
    temporal_ui_port: int
    api_host: str
    api_port: int
    db_pool_min: int
    db_pool_max: int
    log_level: str
    secret_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: Where a browser reaches the Temporal Web UI, when not on the Temporal host at `temporal_ui_port`.
    temporal_ui: str | None = None
    #: Seconds within which every API request is answered (503 naming what did not answer in time).
    request_timeout: float = 5.0
    #: Seconds a worker waits for a PostgreSQL connection or statement (below the 30 s an activity may take,
    #: so a frozen database fails the attempt, which Temporal retries, instead of holding it to its timeout).
    worker_db_timeout: float = 25.0
    #: Peers (IP networks) whose `X-Forwarded-Proto` / `X-Forwarded-For` the console believes.
    trusted_proxies: tuple[str, ...] = ()
    #: A console session ends after this many seconds without use, and in any case this long after sign-in.
    session_idle: int = 30 * 60
    session_absolute: int = 12 * 3600
    #: The signed checkpoint log (`integrity.checkpoints`), its signing key, and seconds between checkpoints
    #: (0: none taken by `danvan up`). Both files live outside PostgreSQL, by design.
    checkpoint_log_path: Path | None = None
    checkpoint_key_path: Path | None = None
    checkpoint_interval: int = 300
    #: The longest `wait` (seconds) a `GET /v1/events` long poll may ask for; the request deadline bounds it too.
    feed_wait_max: float = 30.0
    #: Where a worker serves its metrics (the Temporal SDK's and danvan's own) for Prometheus; port 0: not served.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464
    #: Where traces go over OTLP (HTTP/protobuf); None: no traces are made (`danvan.tracing`).
    otlp_traces_endpoint: str | None = None
    #: The largest request body the API reads (bytes), and how deep its JSON may nest (`api.limits`).
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    #: The years a case's dates may lie in: the working calendar knows the holidays of these years and the
    #: two after (a case received in the last year has deadlines in the next two).
    calendar_first_year: int = CASE_YEARS[0]
    calendar_last_year: int = CASE_YEARS[1]
    #: Seconds between two looks of the scheduled stalled scan (`ops.scan`, a Temporal Schedule `danvan up`
    #: creates); 0: no schedule.
    stalled_scan_every: int = 60
    #: Webhooks (`api.outbound`, `workflows.subscription`): the hosts a subscription's URL may name although they
    #: are not public (loopback, private, link-local, danvan's own services): host names or IP networks.
    webhook_allow_hosts: tuple[str, ...] = ()
    #: Seconds each delivery request may take (connect, send, answer) before it counts as failed.
    webhook_timeout: float = 10.0
    #: How long an event that is not accepted is tried again (seconds; 3 days), and the waits between tries:
    #: the first, doubled after each failure up to the longest.
    webhook_retry_for: float = 3 * 86400.0
    webhook_backoff_first: float = 5.0
    webhook_backoff_max: float = 3600.0
    #: A case's files (`api.attachments`): the largest one (bytes), the media types allowed (sniffed from the
    #: content), and how many one request may carry.
    attachment_max_bytes: int = 20 * 1024 * 1024
    attachment_types: tuple[str, ...] = ATTACHMENT_TYPES
    attachment_max_files: int = 10
    #: Four eyes (`ops.jobs`): a repair job of more cases than this needs a second operator's approval (a reset
    #: needs one whatever its size).
    job_approval_threshold: int = 20
    #: Days a webhook delivery attempt is kept (`deliveries`); older ones are deleted by the stalled scan's looks.
    webhook_keep_days: int = 30

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rpartition(":")[2])

    @property
    def temporal_host(self) -> str:
        return self.temporal_address.rpartition(":")[0]

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def temporal_ui_url(self) -> str:
        """The Temporal Web UI's address (`DANVAN_TEMPORAL_UI_URL`; default the Temporal host, port + 1000)."""
        return self.temporal_ui or f"http://{self.temporal_host}:{self.temporal_ui_port}"

    @property
    def worker_metrics_address(self) -> str | None:
        """`HOST:PORT` of the worker's metrics (an IPv6 host in brackets); None when they are off."""
        if self.worker_metrics_port == 0:
            return None
        host = f"[{self.worker_metrics_host}]" if ":" in self.worker_metrics_host else self.worker_metrics_host
        return f"{host}:{self.worker_metrics_port}"

    @property
    def tokens_file(self) -> Path:
        return self.home / "tokens.json"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def checkpoint_log(self) -> Path:
        return self.checkpoint_log_path or self.home / "checkpoints" / "checkpoints.log"

    @property
    def checkpoint_key(self) -> Path:
        return self.checkpoint_key_path or self.home / "checkpoint.key"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def temporal_db_file(self) -> Path:
        return self.home / "temporal.sqlite"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        temporal_address = _address(env, "TEMPORAL_ADDRESS", "127.0.0.1:7233")
        temporal_port = int(temporal_address.rpartition(":")[2])
        db_pool_max = _int(env, "DANVAN_DB_POOL_MAX", 10, 1, 500)
        level = (env.get("DANVAN_LOG_LEVEL") or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"DANVAN_LOG_LEVEL={level!r}: must be one of DEBUG, INFO, WARNING, ERROR")
        database_url = env.get("DATABASE_URL") or None
        if database_url and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL: must start with postgresql:// or postgres://")
        temporal_ui = (env.get("DANVAN_TEMPORAL_UI_URL") or "").rstrip("/") or None
        if temporal_ui and not temporal_ui.startswith(("http://", "https://")):
            raise ConfigError(f"DANVAN_TEMPORAL_UI_URL={temporal_ui!r}: must start with http:// or https://")
        first_year = _int(env, "DANVAN_CALENDAR_FIRST_YEAR", CASE_YEARS[0], *SUPPORTED_YEARS)
        last_year = _int(env, "DANVAN_CALENDAR_LAST_YEAR", CASE_YEARS[1], *SUPPORTED_YEARS)
        if first_year > last_year:
            raise ConfigError(f"DANVAN_CALENDAR_FIRST_YEAR={first_year} is after DANVAN_CALENDAR_LAST_YEAR={last_year}")
        return cls(
            home=Path(env.get("DANVAN_HOME") or ".danvan").resolve(),
            database_url=database_url,
            temporal_address=temporal_address,
            temporal_namespace=env.get("TEMPORAL_NAMESPACE") or "default",
            temporal_ui_port=_int(
                env, "DANVAN_TEMPORAL_UI_PORT", min(temporal_port + 1000, 65535), 1, 65535
            ),
            api_host=env.get("DANVAN_API_HOST") or "127.0.0.1",
            api_port=_int(env, "DANVAN_API_PORT", 8000, 1, 65535),
            db_pool_min=min(_int(env, "DANVAN_DB_POOL_MIN", 1, 0, 500), db_pool_max),
            db_pool_max=db_pool_max,
            log_level=level,
            secret_key=env.get("DANVAN_SECRET_KEY") or None,
            temporal_ui=temporal_ui,
            request_timeout=_float(env, "DANVAN_REQUEST_TIMEOUT", 5.0, 0.5, 600.0),
            worker_db_timeout=_float(env, "DANVAN_WORKER_DB_TIMEOUT", 25.0, 1.0, 29.0),
            trusted_proxies=_proxies(env, "DANVAN_TRUSTED_PROXIES"),
            session_idle=_int(env, "DANVAN_SESSION_IDLE", 30 * 60, 60, 30 * 86400),
            session_absolute=_int(env, "DANVAN_SESSION_ABSOLUTE", 12 * 3600, 60, 90 * 86400),
            checkpoint_log_path=Path(env["DANVAN_CHECKPOINT_LOG"]).resolve() if env.get("DANVAN_CHECKPOINT_LOG")
            else None,
            checkpoint_key_path=Path(env["DANVAN_CHECKPOINT_KEY"]).resolve() if env.get("DANVAN_CHECKPOINT_KEY")
            else None,
            checkpoint_interval=_int(env, "DANVAN_CHECKPOINT_INTERVAL", 300, 0, 86400),
            feed_wait_max=_float(env, "DANVAN_FEED_WAIT_MAX", 30.0, 0.0, 600.0),
            worker_metrics_host=_host(env, "DANVAN_WORKER_METRICS_HOST", "127.0.0.1"),
            worker_metrics_port=_int(env, "DANVAN_WORKER_METRICS_PORT", 9464, 0, 65535),
            otlp_traces_endpoint=_otlp_traces(env),
            max_body_bytes=_int(env, "DANVAN_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            max_json_depth=_int(env, "DANVAN_MAX_JSON_DEPTH", 32, 4, 256),
            calendar_first_year=first_year,
            calendar_last_year=last_year,
            stalled_scan_every=_int(env, "DANVAN_STALLED_SCAN_EVERY", 60, 0, 86400),
            webhook_allow_hosts=_allow_hosts(env, "DANVAN_WEBHOOK_ALLOW_HOSTS"),
            webhook_timeout=_float(env, "DANVAN_WEBHOOK_TIMEOUT", 10.0, 0.1, 60.0),
            webhook_retry_for=_float(env, "DANVAN_WEBHOOK_RETRY_FOR", 3 * 86400.0, 1.0, 30 * 86400.0),
            webhook_backoff_first=_float(env, "DANVAN_WEBHOOK_BACKOFF_FIRST", 5.0, 0.1, 3600.0),
            webhook_backoff_max=_float(env, "DANVAN_WEBHOOK_BACKOFF_MAX", 3600.0, 0.1, 86400.0),
            attachment_max_bytes=_int(env, "DANVAN_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024, 1024, 1024 ** 3),
            attachment_types=_media_types(env, "DANVAN_ATTACHMENT_TYPES", ATTACHMENT_TYPES),
            attachment_max_files=_int(env, "DANVAN_ATTACHMENT_MAX_FILES", 10, 1, 100),
            job_approval_threshold=_int(env, "DANVAN_JOB_APPROVAL_THRESHOLD", 20, 0, 5000),
            webhook_keep_days=_int(env, "DANVAN_WEBHOOK_KEEP_DAYS", 30, 1, 3650),
        )
