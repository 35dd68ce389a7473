"""The shipped deployment files, checked offline: the Dockerfile with hadolint, the Kubernetes manifests
against the API schemas (and built with kustomize), the compose file's topology, nginx's own syntax
check, and the drain timings of every file against graphrun's settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from graphrun.settings import Settings
from tests.deploy._nginx import DEPLOY, Nginx
from tests.harness.ports import free_port

K8S_VERSION = "1.30.0"
BASE = DEPLOY / "k8s" / "base"
DEFAULTS = Settings()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base_manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in _docs(BASE / name)]


def _kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name}"
    return found[0]


def _pod(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _kind(docs, kind, name)["spec"]["template"]["spec"]
    return spec


# ---------------------------------------------------------------- Dockerfile


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_graphrun_as_pid_1_without_root_and_checks_ok() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"(?m)^FROM ", text)) == 2, "a build stage and a runtime stage"
    assert re.search(r'(?m)^ENTRYPOINT \["graphrun"\]$', text), "exec form: SIGTERM reaches graphrun"
    user = re.findall(r"(?m)^USER (\S+)$", text)
    assert user, "the runtime stage names its user"
    assert not user[-1].startswith(("0", "root")), "the runtime stage runs as a plain user"
    assert "/ok" in text.split("HEALTHCHECK", 1)[1]


def test_the_docker_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = set((DEPLOY.parent / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", ".graphrun-test"} <= ignored
    copied = re.findall(r"(?m)^COPY (?!--from)(?:--\S+ )*(\S+)", (DEPLOY / "Dockerfile").read_text())
    assert copied, "the Dockerfile copies from the context"
    for source in copied:
        assert (DEPLOY.parent / source).exists(), f"COPY {source}: no such path in the repository"
        assert source.split("/")[0] not in ignored, f"COPY {source} is excluded by .dockerignore"


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("manifest", _base_manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_matches_the_kubernetes_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_the_overlays_build_with_kustomize_and_match_the_schema() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl not found: install it to check `kubectl kustomize deploy/k8s/overlays/production`"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / "production")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "graphrun"
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == sorted(
        {
            "Namespace",
            "ConfigMap",
            "Secret",
            "Job",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
        }
    )
    api = _kind(docs, "Deployment", "graphrun-api")
    assert api["spec"]["replicas"] == 3
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/graphrun:0.1.0"}


def test_every_pod_runs_without_privileges_and_within_limits() -> None:
    docs = _base_manifests()
    for kind, name in [
        ("Deployment", "graphrun-api"),
        ("Deployment", "graphrun-worker"),
        ("Job", "graphrun-migrate"),
    ]:
        pod = _pod(docs, kind, name)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
            assert {"configMapRef", "secretRef"} == {k for e in container["envFrom"] for k in e}


def test_the_api_is_probed_on_ok_and_ready() -> None:
    api = _pod(_base_manifests(), "Deployment", "graphrun-api")["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/ok"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["args"] == ["api"]


def test_workers_are_probed_and_scraped_on_their_metrics_port() -> None:
    docs = _base_manifests()
    template = _kind(docs, "Deployment", "graphrun-worker")["spec"]["template"]
    worker = template["spec"]["containers"][0]
    port = {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
    assert {e["name"]: e["value"] for e in worker["env"]}["GRAPHRUN_METRICS_PORT"] == str(port)
    assert worker["livenessProbe"]["httpGet"] == {"path": "/ok", "port": "metrics"}
    assert "readinessProbe" not in worker
    # /ok fails after a lease without a turn of the loop; the probe then fails a few times before the
    # kubelet restarts the worker, so a slow turn or two never costs a restart.
    probe = worker["livenessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 2 * DEFAULTS.heartbeat_interval_s
    annotations = template["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    api = _kind(docs, "Deployment", "graphrun-api")["spec"]["template"]
    assert api["metadata"]["annotations"]["prometheus.io/port"] == str(DEFAULTS.port)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    worker_ingress = [
        p["port"]
        for d in policies
        if d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "graphrun-worker"
        for rule in d["spec"].get("ingress", [])
        for p in rule["ports"]
    ]
    assert worker_ingress == [port]


def test_autoscaling_and_disruption_budgets_cover_api_and_workers() -> None:
    docs = _base_manifests()
    api_hpa = _kind(docs, "HorizontalPodAutoscaler", "graphrun-api")["spec"]
    worker_hpa = _kind(docs, "HorizontalPodAutoscaler", "graphrun-worker")["spec"]
    assert {m["resource"]["name"] for m in api_hpa["metrics"]} == {"cpu"}
    assert {m["resource"]["name"] for m in worker_hpa["metrics"]} == {"cpu", "memory"}
    _kind(docs, "PodDisruptionBudget", "graphrun-api")
    _kind(docs, "PodDisruptionBudget", "graphrun-worker")
    job = _pod(docs, "Job", "graphrun-migrate")["containers"][0]
    assert job["args"] == ["migrate"]


def test_kubernetes_drain_timings_fit_graphrun_settings() -> None:
    docs = _base_manifests()
    config = _kind(docs, "ConfigMap", "graphrun")["data"]
    grace_s = float(config["GRAPHRUN_SHUTDOWN_GRACE_S"])
    worker = _pod(docs, "Deployment", "graphrun-worker")
    # The worker lets runs go on for grace_s, then drains them at a step boundary: room for a step after.
    assert worker["terminationGracePeriodSeconds"] >= grace_s + 30
    api = _pod(docs, "Deployment", "graphrun-api")
    pre_stop = api["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The preStop sleep, then an API's drain (it answers open waits and ends streams at once).
    assert api["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + 10
    assert float(config["GRAPHRUN_LEASE_S"]) > DEFAULTS.heartbeat_interval_s * 2


# ---------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_runs_the_whole_topology_in_order() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "api-1", "api-2", "worker", "nginx"} <= services.keys()
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("api-1", "api-2", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["api-1"]["command"] == ["api"]
    assert "/ready" in " ".join(services["api-1"]["healthcheck"]["test"])
    assert services["api-1"]["env_file"] == [".env"]
    assert (DEPLOY / ".env.example").exists()
    assert "./nginx:/etc/nginx/graphrun:ro" in services["nginx"]["volumes"]


def test_compose_sizes_postgres_for_its_processes() -> None:
    services = _compose()["services"]
    flags = services["postgres"]["command"]
    settings = dict(f.split("=", 1) for f in flags if "=" in f)
    assert {"shared_buffers", "effective_cache_size", "maintenance_work_mem"} <= settings.keys()
    processes = 2 + services["worker"]["deploy"]["replicas"]
    assert int(settings["max_connections"]) >= processes * 3 * DEFAULTS.pg_pool_max_size


def test_compose_drain_timings_fit_graphrun_settings() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    grace_s = float(worker["environment"]["GRAPHRUN_SHUTDOWN_GRACE_S"])
    assert float(worker["stop_grace_period"].rstrip("s")) >= grace_s + 30


def test_every_compose_service_has_cpu_and_memory_limits_and_rotated_logs() -> None:
    for name, service in _compose()["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert re.fullmatch(r"\d+[mg]", limits["memory"]), name
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert re.fullmatch(r"\d+m", logging["options"]["max-size"]), name
        assert int(logging["options"]["max-file"]) >= 2, name


def test_nginx_holds_requests_as_long_as_a_wait_and_passes_event_ids() -> None:
    conf = (DEPLOY / "nginx" / "graphrun.conf").read_text()
    read_timeout = float(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))  # type: ignore[union-attr]
    assert read_timeout > DEFAULTS.wait_timeout_s
    assert read_timeout > DEFAULTS.sse_keepalive_s
    for directive in ("proxy_buffering off;", "proxy_http_version 1.1;", "Last-Event-ID $http_last_event_id"):
        assert directive in conf
    assert "keepalive" in (DEPLOY / "nginx" / "upstream.conf").read_text()


def test_nginx_accepts_the_shipped_config(tmp_path: Path) -> None:
    nginx = Nginx(free_port(), ["127.0.0.1:1", "127.0.0.1:2"], tmp_path)
    result = nginx.check()
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_the_observability_profile_scrapes_every_process_and_takes_traces() -> None:
    services = _compose()["services"]
    profile = {name for name, svc in services.items() if "observability" in svc.get("profiles", [])}
    assert profile == {"prometheus", "alertmanager", "alert-relay", "jaeger", "grafana"}
    scrape = yaml.safe_load((DEPLOY / "observability" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["graphrun-api"]["static_configs"][0]["targets"] == ["api-1:2024", "api-2:2024"]
    worker_port = int(services["worker"]["environment"]["GRAPHRUN_METRICS_PORT"])
    assert jobs["graphrun-worker"]["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": worker_port,
    }
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services["api-1"]["environment"]
