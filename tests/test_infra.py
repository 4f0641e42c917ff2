"""infra/: the files parse, every deployment names a real flow, manifests have what Ray needs,
(``radio-ddrm serve`` against a real Prefect server is in tests/test_deployment.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from prefect.flows import Flow

from flows.deployments import DEPLOYMENTS

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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
