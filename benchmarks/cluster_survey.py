"""The demo survey's reconstruction stage on the two-node local cluster (infra/local-cluster.sh)
against an S3 root (moto on 127.0.0.1), against a single local Ray with a local root. Same dataset, same
prior (the shipped FIRST prior at N = 64: it works at any size), the demo survey's reconstruction
(VLA/EHT/ALMA × σ_y = 0.02 × K ∈ {20, 50} × 8 test images, S = 8: 48 observations), two 1-CPU actors
either way, run local, cluster, cluster, local and averaged per kind. The rate is the flow's own:
observations over the seconds from the actors' creation (their start-up included) to the last write. The flows run in a subprocess each, as a user runs them.

Last line: ``cluster_obs_per_s=<x> local_obs_per_s=<x> ratio=<x>`` (goal: ratio >= 0.9).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "flows.cli"]
SURVEY = ["--preset", "demo", "--checkpoint", "first", "--actors", "2"]  # the demo survey's own arrays, K, S, images


def run(env: dict, *args: str) -> str:
    out = subprocess.run([*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
    return out.stdout + out.stderr


def reconstruct(env: dict, dataset: str, root: str, *extra: str) -> float:
    """Observations per second of the actor pool, as the flow logs it."""
    text = run(env, "reconstruct", "--dataset", dataset, "--root", root, *SURVEY, *extra)
    rate = re.findall(r"([0-9.]+) observations/s", text)
    if rate:
        return float(rate[-1])
    raise RuntimeError(f"no rate in the log:\n{text[-1500:]}")


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    s3.start()
    work = Path(tempfile.mkdtemp(prefix="rdcb-", dir="/tmp"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "RADIO_DDRM_CLUSTER_DIR": str(work / "cluster"), "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    import s3fs

    s3fs.S3FileSystem(key="bench", secret="bench-secret", endpoint_url=env["AWS_ENDPOINT_URL"]).mkdir("bench")
    prep = ["prepare", "--preset", "demo", "--N", "64", "--n-images", "256", "--name", "bench"]
    local_data = re.search(r"dataset store: (\S+)", run(env, *prep, "--root", str(work / "local"))).group(1)
    s3_data = re.search(r"dataset store: (\S+)", run(env, *prep, "--root", "s3://bench/run")).group(1)
    # local, cluster, cluster, local (ABBA): a drift of the machine's speed over the runs cancels out
    rates: dict[str, list[float]] = {"local": [], "cluster": []}

    def timed(kind: str, dataset: str, root: str, *extra: str) -> None:
        t0 = time.perf_counter()
        rates[kind].append(reconstruct(env, dataset, root, *extra))
        print(f"{kind}: {rates[kind][-1]:.3f} observations/s ({time.perf_counter() - t0:.0f} s with start-up)",
              flush=True)

    timed("local", local_data, str(work / "local-1"))
    up = subprocess.run([str(ROOT / "infra" / "local-cluster.sh"), "up", "--workers", "1", "--port", str(port + 7)],
                        env=env, capture_output=True, text=True, check=True)
    address = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        for k in (1, 2):
            timed("cluster", s3_data, f"s3://bench/run-{k}", "--ray-address", address)
    finally:
        subprocess.run([str(ROOT / "infra" / "local-cluster.sh"), "down"], env=env, capture_output=True)
    timed("local", local_data, str(work / "local-2"))
    s3.stop()
    cluster, local = (sum(rates[k]) / 2 for k in ("cluster", "local"))
    print(f"cluster_obs_per_s={cluster:.3f} local_obs_per_s={local:.3f} ratio={cluster / local:.2f}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
