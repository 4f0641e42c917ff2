"""Every Ray that the command line starts listens on loopback only, whatever was imported first.

Each command runs as a user runs it: a fresh process whose environment has none of the project's local
settings (the test process has them, from conftest). While it runs, every process of its tree (the CLI,
Ray's GCS, raylet, agents and workers, Ray Train workers, the Prefect server) is listed from /proc, and
every TCP socket any of them listens on must be bound to a loopback address."""

import ipaddress
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime.environment import LOCAL_ENV
from tests.procfs import listening_sockets, parent_pid

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it, from /proc."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = parent_pid(int(pid))
        except (OSError, IndexError):
            continue
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= new
        grew = bool(new)
    return tree


def user_env() -> dict:
    """The test's environment without the project's local settings: what a user's shell has, pointed at
    the session's Prefect server (one server for all, instead of an ephemeral one per command)."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if k not in LOCAL_ENV}
    return {**env, "PREFECT_API_URL": PREFECT_API_URL.value()} if PREFECT_API_URL.value() else env


def sockets_while_running(args: list[str], timeout_s: float = 240) -> tuple[subprocess.CompletedProcess, set]:
    """Run ``radio-ddrm *args``; return (the finished process, every (pid, ip, port) its tree listened on)."""
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=user_env())
    seen, t0 = set(), time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout_s:
        seen |= set(listening_sockets(process_tree(proc.pid)))
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err), seen


@pytest.mark.skipif(not VIS.is_dir(), reason=f"shared visibilities not found at {VIS}")
def test_every_ray_the_command_line_starts_listens_on_loopback_only(prefect_harness, tmp_path):
    from configs import prepare_preset
    from flows.prepare import prepare_dataset

    dataset = prepare_dataset(prepare_preset("demo", name="loopback", N=16, n_images=64, shard_size=64),
                              root=str(tmp_path / "data"))
    toy = ["--arrays", "vla", "--K", "2", "--n-images", "1", "--samples", "1"]
    commands = {
        "reconstruct": ["reconstruct", "--checkpoint", "gaussian", "--dataset", dataset, "--actors", "1",
                        "--root", str(tmp_path / "r"), *toy],
        "train": ["train", "--steps", "2", "--workers", "1", "--dataset", dataset, "--root", str(tmp_path / "t")],
        "image": ["image", str(VIS / "mojave.uvfits"), "--actors", "1", "--N", "32", "--K", "2", "--samples", "1",
                  "--field-fractions", "1", "--selfcal", "none", "--likelihood", "gridded",  # the sockets are the
                  "--root", str(tmp_path / "i")],                                            # subject
        "survey": ["survey", "--prior", "gaussian", "--no-fits", "--root", str(tmp_path / "s"), *toy],
    }
    # two at a time: mostly start-up waits, so they overlap; four Ray heads at once beside the other test worker
    # overloaded a 2-core machine's GCS ("timed out during startup")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(commands, pool.map(sockets_while_running, commands.values())))
    for name, (proc, seen) in runs.items():
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
        ports = {(ip, port) for _, ip, port in seen}
        assert len(ports) >= 5, (name, ports)  # Ray's servers were seen: GCS, raylet, agents, a worker
        exposed = sorted((ip, port) for ip, port in ports if not ipaddress.ip_address(ip).is_loopback)
        assert not exposed, f"{name}: listening beyond loopback on {exposed}"
