"""deploy/kubernetes: every object validates against the Kubernetes API schemas of a pinned
version (offline), and the objects agree with the service: port, probe paths, variable names,
user, writable folders, grace period, and the jobs' commands and schedules."""

import json
import re
import runpy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from conftest import MakeApp
from fraud_detection.cli import cli
from fraud_detection.config import variable_names
from prometheus_helpers import REPO, api, running_prometheus
from waiting import wait_for

KUBERNETES = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.31.0"
# Run from its file: importing it would cache the settings of the first import for later tests.
GUNICORN_CONF = REPO / "src" / "fraud_detection" / "gunicorn_conf.py"
# Read by libraries rather than by Settings: boto3 (AWS_*), prometheus_client.
LIBRARY_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR"}
CLUSTER_SCOPED = {"Namespace"}


def rendered() -> list[dict[str, Any]]:
    """The objects `kubectl apply -k` creates: resources with namespace, labels and image set."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    labels = {k: v for entry in kustomization["labels"] for k, v in entry["pairs"].items()}
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kustomization["images"]}
    objects = []
    for resource in kustomization["resources"]:
        for obj in yaml.safe_load_all((KUBERNETES / resource).read_text()):
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
            obj["metadata"].setdefault("labels", {}).update(labels)
            for container in containers(obj):
                container["image"] = images.get(container["image"], container["image"])
            objects.append(obj)
    return objects


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] == "Deployment":
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    if obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    return None


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return list(spec["containers"]) if spec else []


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in rendered() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def config_env() -> dict[str, str]:
    """The environment a pod gets from the ConfigMap and the Secret."""
    return {**one("ConfigMap")["data"], **one("Secret")["stringData"]}


def test_every_object_validates_against_the_pinned_kubernetes_schemas() -> None:
    objects = rendered()
    kinds = {o["kind"] for o in objects}
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "CronJob",
        "Ingress",
    }
    for obj in objects:
        # strict: unknown fields (a misspelt key Kubernetes would drop silently) fail too.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_refused_by_the_validation() -> None:
    deployment = one("Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_container_port_is_the_one_gunicorn_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in config_env().items():
        monkeypatch.setenv(name, value)
    gunicorn = runpy.run_path(str(GUNICORN_CONF))
    (container,) = containers(one("Deployment"))
    (port,) = container["ports"]
    assert gunicorn["bind"] == f"0.0.0.0:{port['containerPort']}"
    service_port = one("Service")["spec"]["ports"][0]
    assert service_port["targetPort"] == port["name"]
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])


def test_probes_hit_the_services_health_routes(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(tmp_path / "empty-store")
    routes = app.url_map.bind("fraud")
    (container,) = containers(one("Deployment"))
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    for path in (
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
        annotations["prometheus.io/path"],
    ):
        routes.match(path, method="GET")  # raises NotFound for a path the service lacks
    client = app.test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 503, "no model loaded yet"


def test_configuration_uses_only_the_services_variable_names() -> None:
    settings_names = set(variable_names().values())
    assert {"FRAUD_MODEL_STORE", "DATABASE_URL", "FRAUD_API_TOKENS"} <= settings_names
    for name in config_env():
        assert name in settings_names | LIBRARY_VARIABLES or name.startswith("AWS_"), name
    assert one("Secret")["stringData"].keys() >= {
        "DATABASE_URL",
        "FRAUD_API_TOKENS",
        "FRAUD_ADMIN_TOKEN",
    }
    assert config_env()["DATABASE_URL"].startswith("postgresql"), "replicas share one log"
    assert config_env()["FRAUD_MODEL_STORE"].startswith("s3://"), "replicas share one store"
    for obj in rendered():
        for container in containers(obj):
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {one("ConfigMap")["metadata"]["name"]}


def test_pods_run_as_the_images_user_on_a_read_only_root_with_writable_folders() -> None:
    uid = re.search(r"^USER (\d+):", (REPO / "Dockerfile").read_text(), re.M)
    assert uid
    env = config_env()
    for obj in rendered():
        spec = pod_spec(obj)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == int(uid.group(1))
        volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]
            mounts = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in volumes}
            assert "/tmp" in mounts
    (container,) = containers(one("Deployment"))
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {env["PROMETHEUS_MULTIPROC_DIR"], env["FRAUD_SERVING_CACHE"], "/tmp"} <= mounts


def test_pods_get_longer_to_stop_than_gunicorn_takes_to_drain() -> None:
    gunicorn = runpy.run_path(str(GUNICORN_CONF))
    spec = one("Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > pause + gunicorn["graceful_timeout"]


def test_replicas_scale_and_survive_disruption() -> None:
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pdb = one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] < deployment["spec"]["replicas"]
    for selector in (pdb["selector"]["matchLabels"], one("Service")["spec"]["selector"]):
        assert selector.items() <= pod_labels.items()


def test_the_ingress_buffers_requests_for_the_service() -> None:
    ingress = one("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == one("Service")["metadata"]["name"]
    assert backend["port"]["name"] == one("Service")["spec"]["ports"][0]["name"]


def test_cron_jobs_run_the_fraud_commands_on_the_schedules_of_fraud_schedule() -> None:
    (serving,) = containers(one("Deployment"))
    schedules = {
        "retrain": "0 2 * * 0",
        "monitor": "0 6 * * *",
        "log prune": "0 4 * * *",
        "rollout step": "30 * * * *",
    }
    for command, schedule in schedules.items():
        job = one("CronJob", f"fraud-{command.replace(' ', '-')}")
        assert job["spec"]["schedule"] == schedule
        assert job["spec"]["timeZone"] == "Etc/UTC"
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        (container,) = containers(job)
        assert container["image"] == serving["image"]
        assert container["command"] == ["fraud", *command.split()]
        assert command.split()[0] in cli.commands
    assert float(config_env()["FRAUD_LOG_RETENTION_DAYS"]) > 0


def test_prometheus_scrape_job_keeps_the_service_pods_at_their_annotated_port(
    tmp_path: Path,
) -> None:
    """The job's relabelling run by the real Prometheus, with the pods Kubernetes would list.

    Debian's Prometheus is built without Kubernetes discovery, so a file lists two pods with
    the labels that discovery gives them.
    """
    config = yaml.safe_load((KUBERNETES / "prometheus-scrape.yml").read_text())
    (job,) = config["scrape_configs"]
    assert f'job="{job["job_name"]}"' in (REPO / "alerts.yml").read_text()
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]

    def pod(name: str, app: str) -> dict[str, Any]:
        labels = {"__meta_kubernetes_pod_name": name}
        labels |= {f"__meta_kubernetes_pod_label_{sanitized(k)}": v for k, v in pod_labels.items()}
        labels["__meta_kubernetes_pod_label_app_kubernetes_io_name"] = app
        for key, value in annotations.items():
            labels[f"__meta_kubernetes_pod_annotation_{sanitized(key)}"] = value
        return {"targets": [f"{name}.invalid:8080"], "labels": labels}

    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps([pod("serving", "fraud-detection"), pod("other", "another-app")]))
    del job["kubernetes_sd_configs"]
    job["file_sd_configs"] = [{"files": [str(pods)]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    with running_prometheus(path) as prom:
        targets = wait_for(lambda: api(prom, "targets")["activeTargets"], what="pods discovered")
    (target,) = targets
    assert target["labels"]["job"] == "fraud-detection"
    assert target["labels"]["pod"] == "serving"
    port = containers(one("Deployment"))[0]["ports"][0]["containerPort"]
    assert (
        target["scrapeUrl"] == f"http://serving.invalid:{port}{annotations['prometheus.io/path']}"
    )


def sanitized(name: str) -> str:
    """A Kubernetes label or annotation name as Prometheus discovery spells it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)
