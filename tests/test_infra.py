"""infra/: the files parse, every deployment names a real flow, manifests have what Ray needs,
and ``radio-ddrm serve`` registers the deployments with a real local Prefect server."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prefect.flows import Flow

from flows.deployments import DEPLOYMENTS
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"


def load_entrypoint(entrypoint: str):
    path, name = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(f"entry_{name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_prefect_yaml_entrypoints_are_real_flows_and_match_the_served_list():
    config = yaml.safe_load((INFRA / "prefect.yaml").read_text())
    declared = {d["name"]: d for d in config["deployments"]}
    assert set(declared) == {d.name for d in DEPLOYMENTS}
    for spec in DEPLOYMENTS:
        d = declared[spec.name]
        flow = load_entrypoint(d["entrypoint"])
        assert isinstance(flow, Flow) and flow.name == spec.flow.name and d["entrypoint"] == spec.entrypoint
        assert [s["cron"] for s in d.get("schedules", [])] == ([spec.cron] if spec.cron else [])
        assert d.get("parameters", {}) == spec.parameters and d["work_pool"]["name"] == "radio-ddrm"


def test_kuberay_manifest_has_what_ray_needs():
    doc = yaml.safe_load((INFRA / "raycluster.yaml").read_text())
    assert doc["apiVersion"].startswith("ray.io/") and doc["kind"] == "RayCluster"
    head = doc["spec"]["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["image"] and "rayStartParams" in head
    workers = doc["spec"]["workerGroupSpecs"]
    assert workers and all(w["groupName"] and w["maxReplicas"] >= w["minReplicas"] for w in workers)
    limits = workers[0]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


def test_ray_up_config_has_what_ray_needs():
    doc = yaml.safe_load((INFRA / "ray-cluster.yaml").read_text())
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "max_workers"):
        assert key in doc, key
    assert doc["head_node_type"] in doc["available_node_types"]
    assert any(t["resources"].get("GPU") for t in doc["available_node_types"].values())


def test_dockerfile_installs_the_package_and_no_credentials():
    text = (INFRA / "Dockerfile").read_text()
    assert "FROM rayproject/ray" in text and "pip install" in text and "-e ." in text
    assert "AWS_SECRET_ACCESS_KEY=" not in text


def _wait(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def test_serve_registers_the_deployments_with_a_local_prefect_server(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    exe = Path(sys.executable).parent
    server = subprocess.Popen([str(exe / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    serve = None
    try:
        _wait(f"{api}/health", 90)
        serve = subprocess.Popen([str(exe / "radio-ddrm"), "serve"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        names = set()
        deadline = time.time() + 90
        while time.time() < deadline and not {d.name for d in DEPLOYMENTS} <= names:
            time.sleep(2)
            out = subprocess.run([str(exe / "prefect"), "deployment", "ls"], env=env, capture_output=True,
                                 text=True, timeout=60).stdout
            names = {d.name for d in DEPLOYMENTS if d.name in out}
        assert names == {d.name for d in DEPLOYMENTS}
    finally:
        for proc in (serve, server):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
