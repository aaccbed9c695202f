"""Settings: every number within its range, a bad value refused at start naming the variable and the rule."""

from __future__ import annotations

import pytest

from danvan.settings import ConfigError, Settings


def test_defaults_need_no_setting() -> None:
    settings = Settings.from_env({})
    assert settings.request_timeout == 5.0
    assert settings.worker_db_timeout == 25.0
    assert settings.api_port == 8000


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("DANVAN_API_PORT", "eighty", "DANVAN_API_PORT='eighty': must be an integer"),
    ("DANVAN_API_PORT", "70000", "DANVAN_API_PORT=70000: must be between 1 and 65535"),
    ("DANVAN_REQUEST_TIMEOUT", "soon", "DANVAN_REQUEST_TIMEOUT='soon': must be a number (seconds)"),
    ("DANVAN_REQUEST_TIMEOUT", "0.1", "DANVAN_REQUEST_TIMEOUT=0.1: must be between 0.5 and 600"),
    # A worker's database bound stays below an activity's 30 s, or a frozen database would hold every attempt.
    ("DANVAN_WORKER_DB_TIMEOUT", "30", "DANVAN_WORKER_DB_TIMEOUT=30: must be between 1 and 29"),
    ("DANVAN_MAX_BODY_BYTES", "10", "DANVAN_MAX_BODY_BYTES=10: must be between 1024 and 67108864"),
    ("DANVAN_MAX_JSON_DEPTH", "1000", "DANVAN_MAX_JSON_DEPTH=1000: must be between 4 and 256"),
    # The holidays package knows Vietnam's lunar holidays to 2100; a case's deadlines run two years on.
    ("DANVAN_CALENDAR_LAST_YEAR", "2100", "DANVAN_CALENDAR_LAST_YEAR=2100: must be between 1901 and 2098"),
    ("DANVAN_CALENDAR_FIRST_YEAR", "1900", "DANVAN_CALENDAR_FIRST_YEAR=1900: must be between 1901 and 2098"),
])
def test_a_bad_number_names_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == rule


def test_numbers_within_range_are_taken() -> None:
    settings = Settings.from_env({"DANVAN_WORKER_DB_TIMEOUT": "12.5", "DANVAN_API_PORT": "9000"})
    assert (settings.worker_db_timeout, settings.api_port) == (12.5, 9000)


def test_the_worker_serves_its_metrics_on_loopback_port_9464_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.worker_metrics_host, settings.worker_metrics_port) == ("127.0.0.1", 9464)
    assert settings.worker_metrics_address == "127.0.0.1:9464"


@pytest.mark.parametrize(("env", "address"), [
    ({"DANVAN_WORKER_METRICS_PORT": "0"}, None),
    ({"DANVAN_WORKER_METRICS_HOST": "0.0.0.0", "DANVAN_WORKER_METRICS_PORT": "9500"}, "0.0.0.0:9500"),
    ({"DANVAN_WORKER_METRICS_HOST": "::"}, "[::]:9464"),
    ({"DANVAN_WORKER_METRICS_HOST": "worker-1.local"}, "worker-1.local:9464"),
])
def test_the_worker_metrics_address(env: dict[str, str], address: str | None) -> None:
    assert Settings.from_env(env).worker_metrics_address == address


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("DANVAN_WORKER_METRICS_PORT", "70000", "DANVAN_WORKER_METRICS_PORT=70000: must be between 0 and 65535"),
    ("DANVAN_WORKER_METRICS_PORT", "-1", "DANVAN_WORKER_METRICS_PORT=-1: must be between 0 and 65535"),
    ("DANVAN_WORKER_METRICS_HOST", "127.0.0.1:9464",
     "DANVAN_WORKER_METRICS_HOST='127.0.0.1:9464': must be an IP address or a host name"),
    ("DANVAN_WORKER_METRICS_HOST", "bad host",
     "DANVAN_WORKER_METRICS_HOST='bad host': must be an IP address or a host name"),
])
def test_a_bad_worker_metrics_setting_is_refused(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == rule


@pytest.mark.parametrize(("env", "endpoint"), [
    ({}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318/"}, "https://collector:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/t"},
     "http://b:4318/t"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
     "http://a:4318/v1/traces"),
])
def test_traces_are_off_unless_an_otlp_endpoint_is_set(env: dict[str, str], endpoint: str | None) -> None:
    assert Settings.from_env(env).otlp_traces_endpoint == endpoint


@pytest.mark.parametrize(("env", "rule"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
     "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318/v1/traces': must be an http:// or https:// URL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL='grpc': danvan exports traces over http/protobuf only"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
     "OTEL_TRACES_EXPORTER='zipkin': must be otlp or none"),
])
def test_a_bad_otlp_setting_is_refused(env: dict[str, str], rule: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == rule


def test_the_calendar_years_default_and_must_be_in_order() -> None:
    settings = Settings.from_env({})
    assert (settings.calendar_first_year, settings.calendar_last_year) == (2000, 2098)
    assert (settings.max_body_bytes, settings.max_json_depth) == (1024 * 1024, 32)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DANVAN_CALENDAR_FIRST_YEAR": "2050", "DANVAN_CALENDAR_LAST_YEAR": "2040"})
    assert str(refused.value) == "DANVAN_CALENDAR_FIRST_YEAR=2050 is after DANVAN_CALENDAR_LAST_YEAR=2040"


def test_webhook_settings_take_hosts_and_networks_and_refuse_anything_else() -> None:
    settings = Settings.from_env({"DANVAN_WEBHOOK_ALLOW_HOSTS": " 127.0.0.1, Hooks.Internal., 10.0.0.0/8,,::1 ",
                                  "DANVAN_WEBHOOK_RETRY_FOR": "60"})
    assert settings.webhook_allow_hosts == ("127.0.0.1/32", "hooks.internal", "10.0.0.0/8", "::1/128")
    assert settings.webhook_retry_for == 60 and settings.webhook_timeout == 10
    assert Settings.from_env({}).webhook_retry_for == 3 * 86400  # three days by default
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DANVAN_WEBHOOK_ALLOW_HOSTS": "hooks internal"})
    assert str(refused.value) == ("DANVAN_WEBHOOK_ALLOW_HOSTS: 'hooks internal' is not a host name, an IP address "
                                  "or an IP network")
    with pytest.raises(ConfigError):
        Settings.from_env({"DANVAN_WEBHOOK_TIMEOUT": "0"})


def test_the_files_a_case_takes_are_settings() -> None:
    default = Settings.from_env({})
    assert default.attachment_max_bytes == 20 * 1024 * 1024 and default.attachment_max_files == 10
    assert "application/pdf" in default.attachment_types and "image/tiff" in default.attachment_types
    chosen = Settings.from_env({"DANVAN_ATTACHMENT_TYPES": "application/pdf, IMAGE/PNG,application/pdf",
                                "DANVAN_ATTACHMENT_MAX_BYTES": "5000000"})
    assert chosen.attachment_types == ("application/pdf", "image/png") and chosen.attachment_max_bytes == 5_000_000
    with pytest.raises(ConfigError, match="DANVAN_ATTACHMENT_TYPES: 'pdf' is not a media type"):
        Settings.from_env({"DANVAN_ATTACHMENT_TYPES": "pdf"})
    with pytest.raises(ConfigError, match="DANVAN_ATTACHMENT_MAX_FILES=0"):
        Settings.from_env({"DANVAN_ATTACHMENT_MAX_FILES": "0"})
