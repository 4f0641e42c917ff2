import logging
import os
import re
import socket
import warnings

import pytest
import torch

from ddrm.inverse.operators import FourierSamplingOperator
from runtime.environment import configure_compute, configure_local_environment

configure_local_environment()

# Under pytest-xdist each worker takes its share of the cores, and the processes it starts inherit it:
# two torch processes with a thread per core each oversubscribe the machine (up to 10x slower on 2 cores).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
TORCH_THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(TORCH_THREADS))
configure_compute(TORCH_THREADS)  # as every imaging process: freed tensors stay in the heap


def random_counts(N: int, fraction: float, seed: int, with_dc: bool = True) -> torch.Tensor:
    """Hermitian-symmetric integer counts on the FFT grid, about ``fraction`` of cells measured."""
    g = torch.Generator().manual_seed(seed)
    half = (torch.rand(N, N, generator=g) < fraction / 2) * torch.randint(1, 6, (N, N), generator=g)
    counts = half + torch.roll(torch.flip(half, (0, 1)), (1, 1), (0, 1))
    if with_dc:
        counts[0, 0] = max(int(counts[0, 0]), 2)
    return counts


@pytest.fixture
def fourier_op():
    def make(N: int, fraction: float = 0.3, seed: int = 0, weighting: str = "natural") -> FourierSamplingOperator:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # symmetric counts must not warn
            return FourierSamplingOperator(random_counts(N, fraction, seed), weighting=weighting)
    return make


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect test server (temporary database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on 127.0.0.1, reached through the standard AWS variables."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["AWS_ENDPOINT_URL"]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket per test: s3://<name>."""
    import s3fs

    name = ("t-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()))[:50].strip("-")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists(name):
        fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_session(s3_server, prefect_harness):
    """One local Ray (2 CPUs, loopback) per session; started after the S3 variables are set so workers see them."""
    import ray

    from runtime.ray_cluster import ensure_ray

    ensure_ray(num_cpus=2)
    yield
    ray.shutdown()
