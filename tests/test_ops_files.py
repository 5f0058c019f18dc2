"""The operations files (SPEC section 9): Prometheus config, alert rules and their unit tests,
runbooks, the Grafana dashboard and provisioning, docker-compose.yml. Checked with the real
promtool, Prometheus and Pushgateway binaries, not by reading the YAML back."""

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops_files import (
    ALERT_TESTS,
    ALERTS,
    COMPOSE,
    DASHBOARD,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    HOST_PROMETHEUS_CONFIG,
    KNOWN_METRICS,
    MONITOR_METRICS,
    PROMETHEUS_CONFIG,
    REPO,
    REQUIRED_ALERTS,
    RUNBOOKS,
    alert_rules,
    dashboard_exprs,
    dashboard_panels,
    load_rules,
    metric_names,
    recorded_names,
)
from prometheus_helpers import (
    PrometheusQueryError,
    free_port,
    host_port,
    localized_config,
    push_metrics,
    query,
    require_binary,
    running_prometheus,
    running_pushgateway,
)
from waiting import wait_for


def promtool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool")
    argv = [binary, *map(str, args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------ promtool


@pytest.mark.parametrize(
    "config", [PROMETHEUS_CONFIG, HOST_PROMETHEUS_CONFIG], ids=lambda p: p.name
)
def test_prometheus_config_passes_promtool_check_with_its_rule_files(
    config: Path, tmp_path: Path
) -> None:
    # The config names alerts.yml relative to itself, as in the containers: check the pair.
    shutil.copy(config, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    done = promtool("check", "config", tmp_path / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr


def test_host_prometheus_config_is_the_compose_one_pointed_at_this_host() -> None:
    compose_config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    host_config = yaml.safe_load(HOST_PROMETHEUS_CONFIG.read_text())
    targets = {
        job["job_name"]: job.pop("static_configs")[0]["targets"]
        for job in host_config["scrape_configs"]
    }
    assert targets == {
        "fraud-detection": ["127.0.0.1:5000"],
        "pushgateway": ["127.0.0.1:9091"],
        "prometheus": ["localhost:9090"],
    }
    for job in compose_config["scrape_configs"]:
        del job["static_configs"]
    assert host_config == compose_config  # same jobs and labels: alerts and dashboard work


def test_alert_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rule_unit_tests_pass_promtool() -> None:
    done = promtool("test", "rules", ALERT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "alerts never seen firing in a unit test"
    assert alerts - quiet == set(), "alerts never seen staying quiet in a unit test"
    assert (firing | quiet) - alerts == set(), "unit tests of alerts that do not exist"


# ------------------------------------------------------------------------ alerts and runbooks


def test_alerts_cover_the_spec() -> None:
    assert REQUIRED_ALERTS - {rule["alert"] for rule in alert_rules()} == set()


def test_every_alert_has_severity_summary_description_and_an_existing_runbook() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), name
        assert annotations.get("description", "").strip(), name
        runbook = annotations.get("runbook_url", "")
        assert runbook.startswith("docs/runbooks/"), (name, runbook)
        assert (REPO / runbook).is_file(), (name, runbook)


def test_every_runbook_is_linked_from_an_alert_and_names_its_alerts() -> None:
    linked: dict[str, set[str]] = {}
    for rule in alert_rules():
        linked.setdefault(rule["annotations"]["runbook_url"], set()).add(rule["alert"])
    runbooks = {f"docs/runbooks/{p.name}" for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert runbooks == set(linked)
    index = (RUNBOOKS / "README.md").read_text()
    for runbook, alerts in linked.items():
        text = (REPO / runbook).read_text()
        for alert in alerts:
            assert alert in text, f"{runbook} does not mention {alert}"
            assert alert in index, f"docs/runbooks/README.md does not list {alert}"


def test_model_drift_runbook_explains_the_rollback() -> None:
    assert "fraud models rollback" in (RUNBOOKS / "model-drift.md").read_text()


# ------------------------------------------------------------------------ metric names


def test_metric_name_extraction_skips_functions_keywords_labels_and_durations() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(fraud_score_bucket{le!="1e-3"}'
        "[$__rate_interval]))) > 1e-3 and on(model) absent(up) or vector(0) "
        "unless ignoring(x) group_left() fraud:ratio:rate5m offset 5m * fraud_scroe_count"
    )
    assert metric_names(expr) == {
        "fraud_score_bucket",
        "up",
        "fraud:ratio:rate5m",
        "fraud_scroe_count",
    }


def test_every_metric_in_alerts_and_dashboard_is_one_the_system_exports() -> None:
    records = recorded_names()
    exprs = [str(rule["expr"]) for rule in load_rules()] + dashboard_exprs()
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert {name for name in used if ":" in name} <= records, "undefined recording rule"
    assert {name for name in used if ":" not in name} - KNOWN_METRICS == set()


# ------------------------------------------------------------------------ dashboard


def test_dashboard_panels_have_a_title_unit_datasource_and_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    # ${DS_PROMETHEUS}: replaced by the source chosen at import, or resolved by the
    # dashboard's variable of that name where Grafana provisions the file as it stands.
    expected_source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = list(dashboard_panels())
    assert len(panels) >= 13
    for panel in panels:
        title = panel.get("title", "")
        assert title.strip(), panel
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), title
        assert panel.get("datasource") == expected_source, title
        targets = panel.get("targets", [])
        assert targets, title
        for target in targets:
            assert target.get("datasource") == expected_source, title
            assert target.get("expr", "").strip(), title
    rows = [p for p in dashboard["panels"] if p.get("type") == "row"]
    ids = [p["id"] for p in dashboard["panels"] + [n for r in rows for n in r.get("panels", [])]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_asks_for_its_prometheus_at_import_and_resolves_it_when_provisioned() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the service and the Pushgateway",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    # Provisioning skips the import step: a data source variable of the same name stands in,
    # choosing the default Prometheus source (the compose one is the default).
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert variables["DS_PROMETHEUS"]["current"] == {}, "no data source uid is hard-coded"
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert [s["isDefault"] for s in sources if s["type"] == "prometheus"] == [True]
    references = re.findall(r'"uid": "([^"]*)"', DASHBOARD.read_text())
    assert set(references) - {dashboard["uid"], "-- Grafana --"} == {"${DS_PROMETHEUS}"}


def test_dashboard_covers_the_service_and_monitor_metrics() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    wanted = {
        "fraud_prediction_latency_seconds_bucket",
        "fraud_request_errors_total",
        "fraud_predictions_total",
        "fraud_score_bucket",
        "fraud_model_info",
        "fraud_model_reloads_total",
        "fraud_prediction_log_written_total",
        "fraud_prediction_log_dropped_total",
    } | MONITOR_METRICS - {"fraud_model_last_trained_timestamp_seconds"}
    assert wanted - used == set()


def test_dashboard_queries_parse_in_a_real_prometheus() -> None:
    exprs = dashboard_exprs()
    # Grafana's only variable here; any other would reach Prometheus unsubstituted.
    assert all("$" not in e.replace("$__rate_interval", "") for e in exprs)
    errors = []
    with running_prometheus() as prom:
        for expr in exprs:
            try:
                query(prom, expr.replace("$__rate_interval", "1m"))
            except PrometheusQueryError as exc:
                errors.append(f"{expr}\n  -> {exc}")
        with pytest.raises(PrometheusQueryError, match="bad_data"):
            query(prom, "sum(rate(fraud_score_bucket[1m])")  # the check itself can fail
    assert errors == []


# ------------------------------------------------------------------------ the real config


def test_prometheus_config_keeps_the_monitor_job_label_and_fires_its_alerts(
    tmp_path: Path,
) -> None:
    with running_pushgateway() as gateway:
        push_metrics(
            gateway,
            "fraud-monitor",
            "model_drift_detected 1\nmodel_current_f1_score 0.79\n",
            model="fraud-detector",
        )
        # Nothing listens on the app port: the service job must report up == 0.
        config = localized_config(
            tmp_path,
            {"fraud-detection": f"127.0.0.1:{free_port()}", "pushgateway": host_port(gateway)},
        )
        with running_prometheus(config) as prom:
            drift = wait_for(
                lambda: query(prom, 'model_drift_detected{job="fraud-monitor"}'),
                what="the pushed gauge, scraped with its own job label",
            )
            assert drift[0]["metric"]["model"] == "fraud-detector"
            assert drift[0]["value"][1] == "1"
            wait_for(
                lambda: query(prom, 'ALERTS{alertname="FraudModelDriftDetected"}'),
                what="the drift alert from alerts.yml",
            )
            wait_for(
                lambda: query(prom, 'up{job="fraud-detection"} == 0'),
                what="the unreachable service reported down",
            )
            assert query(prom, 'push_time_seconds{job="fraud-monitor"}')


# ------------------------------------------------------------------------ grafana and compose


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: repo-relative source} of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts[volume["target"]] = volume["source"]
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = source
    return mounts


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert [(s["uid"], s["type"], s["url"]) for s in sources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [
        ("file", "/var/lib/grafana/dashboards")
    ]


def test_compose_services_use_pinned_images_or_the_local_build() -> None:
    services = compose()["services"]
    wanted = {"app", "proxy", "train", "minio", "createbucket", "prometheus", "pushgateway"}
    wanted.add("grafana")
    assert wanted | {"postgres"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        if "build" in service:
            assert (REPO / "Dockerfile").is_file()
            continue
        assert re.fullmatch(r"[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image), (name, image)
        assert not image.endswith(":latest"), (name, image)


def test_compose_mounts_exist_and_wire_prometheus_and_grafana_to_the_ops_files() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for source in bind_mounts(service).values():
            assert (REPO / source).exists(), (name, source)
    assert bind_mounts(services["prometheus"]) == {
        "/etc/prometheus/prometheus.yml": "./prometheus.yml",
        "/etc/prometheus/alerts.yml": "./alerts.yml",
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert bind_mounts(services["grafana"]) == {
        "/etc/grafana/provisioning": "./grafana/provisioning",
        "/var/lib/grafana/dashboards": "./grafana/dashboards",
    }


def test_compose_targets_match_the_prometheus_scrape_jobs() -> None:
    services = compose()["services"]
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    assert jobs["fraud-detection"] == "app:5000"
    assert jobs["pushgateway"] == "pushgateway:9091"
    assert "ports" not in services["app"], "clients reach the service through the proxy"
    assert "5000:8080" in services["proxy"]["ports"]
    assert "9091:9091" in services["pushgateway"]["ports"]
    app_env = services["app"]["environment"]
    assert app_env["FRAUD_MODEL_STORE"] == "s3://fraud-models/fraud"
    assert app_env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert app_env["DATABASE_URL"] == "postgresql+psycopg://fraud:fraud@postgres:5432/fraud"
    assert "local/fraud-models" in " ".join(services["createbucket"]["entrypoint"])


def compose_strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) in the compose file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from compose_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from compose_strings(item)
    elif isinstance(node, str):
        yield node


def test_compose_interpolates_nothing() -> None:
    """Engines differ on `${VAR:-default}` (podman-compose 1.0.3 kept it as text): only `$$`."""
    for text in compose_strings(compose()):
        assert "$" not in text.replace("$$", ""), text
    train_env = compose()["services"]["train"]["environment"]
    assert train_env["FRAUD_TRAIN_ARGS"] is None, "passed through from the caller as is"


def test_compose_proxy_serves_the_shipped_nginx_config() -> None:
    proxy = compose()["services"]["proxy"]
    assert bind_mounts(proxy) == {
        "/etc/nginx/conf.d/default.conf": "./deploy/nginx/fraud-detection.conf"
    }
    conf = (REPO / "deploy/nginx/fraud-detection.conf").read_text()
    assert "server app:5000;" in conf and "listen 8080;" in conf


@pytest.mark.parametrize("train_args", ["", "--synthetic"])
def test_podman_compose_gives_train_the_callers_arguments(train_args: str) -> None:
    podman_compose = require_binary("podman-compose", packages="podman-compose")
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_TRAIN_ARGS"}
    if train_args:
        env["FRAUD_TRAIN_ARGS"] = train_args
    done = subprocess.run(
        [podman_compose, "--dry-run", "up", "--no-start", "train"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    create = next(
        line for line in done.stdout.splitlines() if "--name=" in line and "train" in line
    )
    assert "-e FRAUD_TRAIN_ARGS " in create
    assert create.endswith("|| exec fraud train $FRAUD_TRAIN_ARGS"), create
