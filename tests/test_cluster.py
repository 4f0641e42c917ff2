"""The real topology on one machine: a two-node Ray cluster started by infra/local-cluster.sh,
an S3 root on a loopback S3 server, the CLI as users run it, and the faults that topology brings:
a worker node killed mid-survey, the S3 server stopped mid-survey, two runs of one survey at once.

The flows run in subprocesses (``radio-ddrm ... --ray-address``), as on a cluster: their actors read
the data through the store URL, with the S3 variables the nodes were started with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port
from tests.procfs import cluster_pids, kill_node, listening_sockets, raylet_pids, train_worker_pids

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "infra" / "local-cluster.sh"
CLI = [sys.executable, "-m", "flows.cli"]
SECRET = "s3cr3t-radio-ddrm-test-7f1c"  # recognisable, grepped for in every output below

pytestmark = pytest.mark.skipif(not Path(sys.executable).with_name("ray").exists(),
                                reason="the ray CLI is not installed beside this Python")


class S3:
    """moto in this process: stop() closes its port; start() opens it again with the same buckets (moto's
    state lives in the process), which is what a restarted server with its disk looks like from outside."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "radio-ddrm-test", "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}"}


@pytest.fixture(scope="module")
def cluster(prefect_harness):
    """(address, state dir, env): a head node and one worker node of 1 CPU each, started with the S3 env."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3 = S3()
    s3.start()
    import shutil
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="rdc-", dir="/tmp"))  # short: Ray's AF_UNIX socket paths must fit 107 bytes
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, **s3.env, "RADIO_DDRM_CLUSTER_DIR": str(state), "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's Prefect server: no server per CLI call
    port = free_port()
    up = subprocess.run([str(SCRIPT), "up", "--workers", "1", "--head-cpus", "1", "--cpus", "1", "--port", str(port)],
                        env=env, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    address = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    import s3fs

    s3fs.S3FileSystem(key="radio-ddrm-test", secret=SECRET, endpoint_url=s3.env["AWS_ENDPOINT_URL"]).mkdir("runs")
    handle = {"address": address, "state": state, "env": env, "s3": s3}
    handle["dataset"] = _dataset(handle, "shared")  # one dataset store on S3 for every survey below
    yield handle
    subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, timeout=60)
    s3.stop()
    shutil.rmtree(state, ignore_errors=True)


def _cli(cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=cluster["env"], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _dataset(cluster, name: str) -> str:
    """A demo dataset store on the cluster's S3, written from this process (the nodes read it by URL)."""
    from configs import prepare_preset
    from flows.prepare import prepare_dataset

    opts = {"key": "radio-ddrm-test", "secret": SECRET, "endpoint_url": cluster["s3"].env["AWS_ENDPOINT_URL"]}
    return prepare_dataset(prepare_preset("demo", name=name, N=32, n_images=128), root=f"s3://runs/{name}",
                           storage_options=opts)


def _reconstruct(cluster, dataset: str, root: str, *extra: str, prior: str = "gaussian") -> subprocess.Popen:
    args = [*CLI, "reconstruct", "--checkpoint", prior, "--dataset", dataset, "--arrays", "vla", "--K", "20", "100",
            "--n-images", "6", "--samples", "8", "--root", root, "--ray-address", cluster["address"], *extra]
    return subprocess.Popen(args, env=cluster["env"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _results(cluster, root: str):
    import s3fs

    from stores import survey as ss

    fs = s3fs.S3FileSystem(key="radio-ddrm-test", secret=SECRET, endpoint_url=cluster["s3"].env["AWS_ENDPOINT_URL"],
                           skip_instance_cache=True)
    stores = fs.glob(f"{root.removeprefix('s3://')}/surveys/*.zarr")
    if not stores:
        return None, None
    url = f"s3://{stores[0]}"
    opts = {"key": "radio-ddrm-test", "secret": SECRET, "endpoint_url": cluster["s3"].env["AWS_ENDPOINT_URL"]}
    try:
        return url, ss.load_results(url, opts)
    except Exception:  # noqa: BLE001 - created but not yet whole
        return url, None


def _wait_for_done(cluster, root: str, at_least: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, res = _results(cluster, root)
        if res is not None and res["done"].sum() >= at_least:
            return
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} observations done after {timeout} s")


def test_the_cluster_has_two_raylets_and_listens_on_loopback_only(cluster):
    pids = raylet_pids(cluster["state"])
    assert set(pids) == {"head", "worker-1"} and len(set(pids.values())) == 2
    assert all(os.path.exists(f"/proc/{p}") for p in pids.values())
    listening = listening_sockets(cluster_pids(cluster["state"]))
    ports = {port for _, _, port in listening}
    assert int(cluster["address"].rsplit(":", 1)[1]) in ports and len(listening) >= 6  # GCS, raylets, dashboard...
    assert all(ip in ("127.0.0.1", "::1") for _, ip, _ in listening), listening


def _s3(cluster):
    import s3fs

    return s3fs.S3FileSystem(key="radio-ddrm-test", secret=SECRET, endpoint_url=cluster["s3"].env["AWS_ENDPOINT_URL"],
                             skip_instance_cache=True)


def test_training_on_the_cluster_resumes_after_a_train_worker_is_killed(cluster):
    from stores.checkpoints import latest_checkpoint, read_meta
    from tasks.train import read_history

    root, fs = "s3://runs/train", _s3(cluster)
    proc = subprocess.Popen([*CLI, "train", "--preset", "demo", "--dataset", cluster["dataset"], "--root", root,
                             "--workers", "2", "--batch-size", "8", "--steps", "60", "--checkpoint-every", "20",
                             "--max-failures", "1", "--ray-address", cluster["address"]],
                            env=cluster["env"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while fs.invalidate_cache() or not fs.glob("runs/train/priors/*/checkpoint_*/model.pt"):  # one on S3
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    workers = train_worker_pids(cluster["state"])
    assert len(workers) == 2, workers
    os.kill(workers[-1], signal.SIGKILL)  # one DDP worker process dies mid-training
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    checkpoint = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("prior checkpoint:"))
    opts = {"key": "radio-ddrm-test", "secret": SECRET, "endpoint_url": cluster["s3"].env["AWS_ENDPOINT_URL"]}
    assert checkpoint.startswith(f"{root}/priors/") and read_meta(checkpoint, opts, cache=False).step == 60
    history = read_history(checkpoint.rsplit("/", 1)[0], opts)
    assert latest_checkpoint(checkpoint.rsplit("/", 1)[0], opts) == (60, checkpoint)  # what a rerun reuses
    assert [r["step"] for r in history] == list(range(10, 61, 10))  # continuous: every report once, in order
    assert all(np.isfinite(r["loss"]) and r["world_size"] == 2 for r in history)
    resumed = {r["start_step"] for r in history} - {0}
    assert len(resumed) == 1 and resumed.pop() % 20 == 0  # restarted from a checkpoint, not from step 0
    assert SECRET not in out


VIS = ROOT / "../shared/data/visibilities"


@pytest.mark.skipif(not VIS.is_dir(), reason=f"shared visibilities not found at {VIS}")
def test_image_flow_on_the_cluster_reads_and_writes_through_s3(cluster):
    fs = _s3(cluster)
    for name in ("mojave.uvfits", "CenA_2017_100_lo_hops_netcal_StokesI.uvfits"):
        fs.put_file(str(VIS / name), f"runs/obs/{name}")
    out = _cli(cluster, "image", "s3://runs/obs/*.uvfits", "--N", "32", "--K", "3", "--samples", "2",
               "--field-fractions", "1", "--selfcal", "none", "--likelihood", "gridded",  # the S3 and cluster
               # path is the subject, not the ladder, the self-calibration or the exact likelihood
               "--root", "s3://runs/imaging", "--ray-address", cluster["address"], timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    summaries = sorted(fs.glob("runs/imaging/images/*/*/summary.json"))
    assert len(summaries) == 2, summaries
    for path in summaries:
        summary = json.loads(fs.cat_file(path))
        fits_url = summary["images"]["fits"]
        assert fits_url.startswith("s3://runs/imaging/") and fs.exists(fits_url.removeprefix("s3://"))
        assert summary["posterior"]["total_flux_jy"] > 0
    assert SECRET not in out.stdout + out.stderr


def test_survey_on_the_cluster_survives_a_killed_worker_node(cluster):
    dataset = cluster["dataset"]
    root = "s3://runs/killnode"
    proc = _reconstruct(cluster, dataset, root, "--actors", "2", "--K", "20", "--n-images", "8",
                        prior="first")  # about 1.5 s per observation
    _wait_for_done(cluster, root, 2, proc)
    kill_node(cluster["state"], "worker-1")  # the worker node dies mid-survey
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "died" in out  # the pool saw the death and requeued the work
    _, res = _results(cluster, root)
    assert res["done"].all() and len(res["done"]) == 8 and np.isfinite(res["metrics"][:, 0]).all()
    assert len(np.unique(res["finished_at"])) == 8  # one write per observation
    assert SECRET not in out


def test_s3_stopped_mid_survey_fails_clearly_and_a_rerun_completes_the_rest(cluster):
    # the worker node may be dead after the previous test: this one runs on whatever the cluster has left
    dataset = cluster["dataset"]
    root = "s3://runs/s3stop"
    proc = _reconstruct(cluster, dataset, root, "--actors", "1", "--K", "20", "--samples", "4", prior="first")
    _wait_for_done(cluster, root, 2, proc)
    cluster["s3"].stop()
    t0 = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        cluster["s3"].start()
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0 and elapsed < 180, (elapsed, out[-2000:])
    assert cluster["s3"].env["AWS_ENDPOINT_URL"] in out, out[-3000:]  # the error names the endpoint
    assert SECRET not in out
    url, before = _results(cluster, root)
    assert 0 < before["done"].sum() < len(before["done"]) == 6
    rerun = _reconstruct(cluster, dataset, root, "--actors", "1", "--K", "20", "--samples", "4", prior="first")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out[-3000:]
    _, after = _results(cluster, root)
    assert after["done"].all() and np.isfinite(after["metrics"][:, 0]).all()
    kept = before["done"]
    np.testing.assert_array_equal(after["finished_at"][kept], before["finished_at"][kept])  # done ones not redone
    assert SECRET not in out
    from flows.reconstruct import aggregate_metrics

    opts = {"key": "radio-ddrm-test", "secret": SECRET, "endpoint_url": cluster["s3"].env["AWS_ENDPOINT_URL"]}
    report = aggregate_metrics(url, fits=True, storage_options=opts)  # the tables and FITS files on S3 too
    assert report["fits"] == 6 * 4 and report["report"].startswith("s3://runs/s3stop/")  # mean, std, dirty, CLEAN
    _assert_no_secret_stored(cluster, "runs/s3stop")


def _assert_no_secret_stored(cluster, prefix: str) -> None:
    """No object written under prefix (store data, attributes, metadata, lease) holds the S3 secret."""
    import s3fs

    fs = s3fs.S3FileSystem(key="radio-ddrm-test", secret=SECRET, endpoint_url=cluster["s3"].env["AWS_ENDPOINT_URL"],
                           skip_instance_cache=True)
    files = fs.find(prefix)
    assert len(files) > 20
    for path in files:
        assert SECRET.encode() not in fs.cat_file(path), path


def test_two_runs_of_one_survey_at_once_compute_each_observation_once(cluster):
    dataset = cluster["dataset"]
    root = "s3://runs/twice"
    first = _reconstruct(cluster, dataset, root, "--actors", "1")
    time.sleep(3)
    second = _reconstruct(cluster, dataset, root, "--actors", "1")
    out1, _ = first.communicate(timeout=400)
    out2, _ = second.communicate(timeout=400)
    assert first.returncode == 0 and second.returncode == 0, (out1[-2000:], out2[-2000:])
    _, res = _results(cluster, root)
    assert res["done"].all() and len(np.unique(res["finished_at"])) == 12
    import re

    computed = [int(n) for out in (out1, out2) for n in re.findall(r"(\d+) observations in \d+ batches", out)]
    assert sum(computed) == 12, (computed, out1[-1500:], out2[-1500:])  # nothing twice
    assert "being computed by another run" in out1 + out2
