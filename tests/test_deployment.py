"""Production scheduling on one machine: `prefect server start` on 127.0.0.1, a process work pool,
`prefect deploy` from infra/prefect.yaml, `prefect worker start`, and a deployment run triggered from the
CLI that a worker executes to Completed, with its artifacts in the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.procfs import listening_sockets
from tests.test_uvfits import VIS, needs_files

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _api(env: dict, method: str, path: str, body: dict | None = None):
    req = urllib.request.Request(env["PREFECT_API_URL"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home, port = tmp_path_factory.mktemp("prefect-home"), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RADIO_DDRM_HOME": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            _api(env, "GET", "/health")
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "prefect server did not start"
            time.sleep(0.5)
    yield env, server
    _stop(server)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group (a worker's flow-run children too), SIGKILL after 30 s."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _run(env: dict, *args: str) -> str:
    out = subprocess.run([PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


@needs_files
def test_a_worker_runs_the_image_deployment_to_completed_with_its_artifacts(prefect_server, tmp_path):
    env, server = prefect_server
    assert all(ip == "127.0.0.1" for _, ip, _ in listening_sockets({server.pid}))  # the server binds loopback
    _run(env, "work-pool", "create", "radio-ddrm", "--type", "process")
    _run(env, "--no-prompt", "deploy", "--name", "image-observations", "--prefect-file", "infra/prefect.yaml")
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "radio-ddrm"], cwd=ROOT,
                              env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"},  # picks the run up at once
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        files = json.dumps(sorted(str(p) for p in VIS.glob("*.uvfits")))
        out = _run(env, "deployment", "run", "image_observations/image-observations", "--param", f"files={files}",
                   "--param", 'config={"N": 32, "K": 2, "samples": 2, "selfcal": "none", "field_fractions": [1], '
                   '"likelihood": "gridded"}', "--param", f"root={tmp_path}",
                   "--param", "num_actors=1")
        run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
        deadline, state = time.monotonic() + 300, None
        while time.monotonic() < deadline:
            state = _api(env, "GET", f"/flow_runs/{run_id}")["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(2)
        assert state == "COMPLETED", state
    finally:
        _stop(worker)
    artifacts = _api(env, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    kinds = {a["type"] for a in artifacts}
    assert {"table", "markdown"} <= kinds, kinds
    table = next(a for a in artifacts if a["type"] == "table")
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert len(rows) == 4 and all("total_flux_jy" in r for r in rows)
    gallery = next(a for a in artifacts if a["type"] == "markdown")
    assert "data:image/png;base64," in gallery["data"]
    assert len(list(tmp_path.glob("images/*/*/summary.json"))) == 4
    _ui_shows_the_table(env, table, tmp_path)


def test_serve_registers_every_deployment_with_the_server(prefect_server):
    from flows.deployments import DEPLOYMENTS

    env, _ = prefect_server
    serve = subprocess.Popen([str(Path(sys.executable).with_name("radio-ddrm")), "serve"], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wanted, names = {d.name for d in DEPLOYMENTS}, set()
    try:
        deadline = time.monotonic() + 90
        while not wanted <= names and time.monotonic() < deadline:
            assert serve.poll() is None, "radio-ddrm serve exited"
            time.sleep(1)
            names = {d["name"] for d in _api(env, "POST", "/deployments/filter", {})}
    finally:
        _stop(serve)
    assert wanted <= names, wanted - names


CHROMIUM = next((b for b in ("chromium-headless-shell", "chromium", "chromium-browser")
                 if any(os.access(os.path.join(d, b), os.X_OK) for d in os.environ["PATH"].split(os.pathsep))), None)
SCREENSHOT = ROOT / "docs" / "figures" / "prefect-ui-artifact.png"


def _ui_shows_the_table(env: dict, table: dict, tmp_path: Path) -> None:
    """The Prefect UI, as a user sees it: headless Chromium renders the table artifact's page from the local
    server; its DOM must hold the table's column names; the screenshot is kept for the README."""
    if CHROMIUM is None:
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    url = env["PREFECT_API_URL"].removesuffix("/api") + f"/artifacts/artifact/{table['id']}"
    common = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900",
              "--virtual-time-budget=20000", f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run([CHROMIUM, *common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for column in ("file", "total_flux_jy", "chi2_per_coordinate"):
        assert column in dom, (column, dom[-2000:])
    shot = tmp_path / "ui.png"
    subprocess.run([CHROMIUM, *common, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("RADIO_DDRM_UPDATE_SCREENSHOT"):
        SCREENSHOT.write_bytes(shot.read_bytes())
