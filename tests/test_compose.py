"""docker-compose.yml, the production shape, is complete and valid, although no Docker engine runs here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.stalled import SERVER_DYNAMIC_CONFIG

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"

#: The custom search attributes the workflows upsert (`workflows/shared.py`), with their Temporal types.
EXPECTED_SEARCH_ATTRIBUTES = {
    "CaseKind": "Keyword",
    "CaseStatus": "Keyword",
    "LeadBody": "Keyword",
    "District": "Keyword",
    "DueAt": "Datetime",
    "Overdue": "Bool",
}

APP_ENVIRONMENT = {
    "DATABASE_URL",
    "DANVAN_TEMPORAL_UI_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "DANVAN_API_HOST",
    "DANVAN_API_PORT",
    "DANVAN_HOME",
}

APP_SERVICES = ("migrate", "worker", "api", "checkpoint", "metrics-token")


def load() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict)
    return doc


def services() -> dict[str, Any]:
    svcs = load()["services"]
    assert isinstance(svcs, dict)
    return svcs


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def script(service: dict[str, Any]) -> str:
    parts = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    return "\n".join(str(p) for p in parts)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def registered_search_attributes(service: dict[str, Any]) -> dict[str, str]:
    """NAME=TYPE pairs the registration service is given, as `--search-attribute NAME=TYPE` takes them."""
    pairs = environment(service).get("SEARCH_ATTRIBUTES", "").split()
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_stack_has_every_service_of_the_production_shape() -> None:
    svcs = services()
    for name in (
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-search-attributes",
        "temporal-ui",
        "migrate",
        "worker",
        "api",
        "checkpoint",
    ):
        assert name in svcs, f"service {name} is missing"


def test_compose_file_uses_the_compose_specification_without_a_version_key() -> None:
    assert "version" not in load()


def test_images_are_pinned_to_versions() -> None:
    svcs = services()
    assert svcs["postgres"]["image"] == "postgres:16"
    for name in ("temporal", "temporal-schema", "temporal-search-attributes", "temporal-ui"):
        image = svcs[name]["image"]
        assert re.fullmatch(r"temporalio/[a-z-]+:\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"
    assert re.fullmatch(r"temporalio/server:1\.(2\d|3\d)\.\d+", svcs["temporal"]["image"])
    server_version = svcs["temporal"]["image"].split(":")[1]
    for name in ("temporal-schema", "temporal-search-attributes"):
        assert svcs[name]["image"] == f"temporalio/admin-tools:{server_version}"


def test_postgres_is_healthchecked_and_keeps_its_data_in_a_named_volume() -> None:
    doc = load()
    pg = doc["services"]["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume = pg["volumes"][0].split(":")[0]
    assert volume in doc["volumes"]
    assert environment(pg)["POSTGRES_DB"] == "danvan"


def test_temporal_persists_to_the_same_postgres() -> None:
    svcs = services()
    env = environment(svcs["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == environment(svcs["postgres"])["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == environment(svcs["postgres"])["POSTGRES_PASSWORD"]
    assert env["DYNAMIC_CONFIG_FILE_PATH"]
    dynamic = yaml.safe_load(env["TEMPORAL_DYNAMIC_CONFIG"])
    for key, value in SERVER_DYNAMIC_CONFIG.items():  # what the stalled scan wants, as `danvan up` sets it
        assert dynamic[key] == [{"value": value, "constraints": {}}]
    assert depends_on(svcs["temporal"]) == {"temporal-schema": "service_completed_successfully"}
    assert depends_on(svcs["temporal-schema"]) == {"postgres": "service_healthy"}
    schema = script(svcs["temporal-schema"])
    for db in ("temporal", "temporal_visibility"):
        assert f"--db {db} update-schema" in schema


def test_every_search_attribute_is_registered_with_its_type() -> None:
    svc = services()["temporal-search-attributes"]
    assert registered_search_attributes(svc) == EXPECTED_SEARCH_ATTRIBUTES
    body = script(svc)
    assert "temporal operator search-attribute create --address temporal:7233 --namespace default" in body
    assert '--name "$$1" --type "$$2"' in body
    assert "already exists" in body  # a re-run tolerates attributes registered before
    assert depends_on(svc) == {"temporal": "service_healthy"}


def test_registered_search_attributes_match_what_the_workflows_upsert() -> None:
    shared = pytest.importorskip("workflows.shared")
    svc = services()["temporal-search-attributes"]
    assert registered_search_attributes(svc) == shared.SEARCH_ATTRIBUTES


def test_worker_is_scalable() -> None:
    worker = services()["worker"]
    assert worker["command"] == ["danvan", "worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


#: What the worker adds to the shared environment: its metrics, listened for on the compose network.
WORKER_ENVIRONMENT = {"DANVAN_WORKER_METRICS_HOST": "0.0.0.0", "DANVAN_WORKER_METRICS_PORT": "9464"}


def test_app_services_share_one_image_and_one_environment() -> None:
    svcs = services()
    envs = [environment(svcs[name]) for name in APP_SERVICES]
    envs = [({k: v for k, v in env.items() if k not in WORKER_ENVIRONMENT} if name == "worker" else env)
            for name, env in zip(APP_SERVICES, envs, strict=True)]
    assert all(env == envs[0] for env in envs)
    assert set(envs[0]) == APP_ENVIRONMENT
    env = envs[0]
    assert env["DATABASE_URL"].startswith("postgresql://danvan:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/danvan")
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["DANVAN_API_HOST"] == "0.0.0.0"
    assert env["DANVAN_API_PORT"] == "8000"
    assert env["DANVAN_HOME"] == "/var/lib/danvan"
    assert len({svcs[name]["image"] for name in APP_SERVICES}) == 1
    assert svcs["migrate"]["command"] == ["danvan", "migrate"]
    assert svcs["api"]["command"] == ["danvan", "api"]
    assert svcs["checkpoint"]["command"][:3] == ["danvan", "checkpoint", "--every"]


def test_every_worker_serves_its_metrics_on_the_compose_network_only() -> None:
    svcs = services()
    worker = svcs["worker"]
    env = environment(worker)
    assert {k: env[k] for k in WORKER_ENVIRONMENT} == WORKER_ENVIRONMENT
    assert [str(p) for p in worker["expose"]] == [WORKER_ENVIRONMENT["DANVAN_WORKER_METRICS_PORT"]]
    assert "ports" not in worker  # exposed to the network, not published: `--scale worker=N` still works
    for name in APP_SERVICES:
        if name != "worker":
            assert not set(environment(svcs[name])) & set(WORKER_ENVIRONMENT), name
    # The settings the file gives are settings danvan reads, with the values it accepts.
    from danvan.settings import Settings

    settings = Settings.from_env(WORKER_ENVIRONMENT)
    assert settings.worker_metrics_address == "0.0.0.0:9464"


def test_passwords_come_from_variables_with_defaults() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:-" in text
    svcs = services()
    assert environment(svcs["postgres"])["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:-")


def test_app_starts_only_after_migrations_and_search_attributes() -> None:
    svcs = services()
    assert depends_on(svcs["migrate"]) == {"postgres": "service_healthy"}
    for name in ("worker", "api"):
        deps = depends_on(svcs[name])
        assert deps["migrate"] == "service_completed_successfully"
        assert deps["temporal-search-attributes"] == "service_completed_successfully"


def test_api_publishes_port_8000_and_is_healthchecked_on_healthz() -> None:
    api = services()["api"]
    assert any(str(p).endswith("8000:8000") for p in api["ports"])
    check = " ".join(api["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in check
    assert "urllib" in check


def test_web_ui_is_published_on_8233() -> None:
    ui = services()["temporal-ui"]
    assert environment(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(str(p).endswith("8233:8080") for p in ui["ports"])


def test_docker_compose_validates_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (.ci/install-system-deps installs Debian's, as root)")
    done = subprocess.run(
        [exe, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_prometheus_scrapes_the_api_with_its_token_and_every_worker() -> None:
    svcs = services()
    prometheus = svcs["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]  # loopback only
    assert prometheus["depends_on"]["metrics-token"]["condition"] == "service_completed_successfully"
    mounts = {v.split(":")[1]: v for v in prometheus["volumes"]}
    config_file = ROOT / mounts["/etc/prometheus/prometheus.yml"].split(":")[0].removeprefix("./")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["danvan-api"]
    assert api["static_configs"] == [{"targets": ["api:8000"]}] and api["metrics_path"] == "/metrics"
    token = api["authorization"]["credentials_file"]
    assert token.startswith("/run/danvan-metrics/") and mounts["/run/danvan-metrics"].endswith(":ro")
    maker = svcs["metrics-token"]
    assert "metrics-token:/run/danvan-metrics" in maker["volumes"]
    script = maker["command"][0]
    assert "danvan token create --role supervisor" in script and token in script and "-s " + token in script
    # Every worker, however many `--scale worker=N` runs, on the port the compose file gives them.
    worker = jobs["danvan-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"] and str(worker["port"]) == environment(svcs["worker"])[
        "DANVAN_WORKER_METRICS_PORT"]
    # The token's role may read /metrics (api/routes/metrics.py).
    assert 'require("supervisor"' in (ROOT / "api" / "routes" / "metrics.py").read_text(encoding="utf-8")


def test_grafana_has_prometheus_and_a_dashboard_of_series_that_exist() -> None:
    svcs = services()
    grafana = svcs["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"])
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert environment(grafana)["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "danvan.yml").read_text(encoding="utf-8"))
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "danvan.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(p["datasource"]["uid"] == datasource["uid"] for p in dashboard["panels"])
    # Each series the dashboard reads is one danvan or the Temporal SDK exports.
    from danvan import metrics as app_metrics

    exported = {family.name for m in (app_metrics.HTTP_REQUESTS, app_metrics.HTTP_LATENCY,
                                      app_metrics.APPEND_LATENCY, app_metrics.APPEND_CONFLICTS,
                                      app_metrics.WEBHOOK_DELIVERIES, app_metrics.WEBHOOK_LATENCY)
                for family in m.collect()}
    gauges = (ROOT / "api" / "metrics.py").read_text(encoding="utf-8")
    for expr in exprs:
        for name in re.findall(r"\b((?:danvan|temporal)_[a-z_]+)", expr):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in exported or f'"{base}"' in gauges or base.startswith("temporal_"), name
    shown = {n for e in exprs for n in re.findall(r"danvan_\w+", e)}
    assert {"danvan_cases_open", "danvan_cases_overdue"} <= shown
    # The operators' queue, the webhooks and the checkpoints have their panels.
    assert {"danvan_stalled", "danvan_subscriptions", "danvan_checkpoints_late", "danvan_webhook_deliveries_total",
            "danvan_webhook_delivery_duration_seconds_bucket"} <= shown
