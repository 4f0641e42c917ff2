import os
import subprocess
import sys

from flows.cli import main
from flows.demo import DEMO_PRESETS, run_demo


def test_demo_runs_and_ddrm_beats_the_dirty_image():
    results = run_demo(DEMO_PRESETS["quick"])
    assert set(results) == {"vla", "eht", "alma"}
    for array, r in results.items():
        assert r["DDRM"]["psnr"] > r["dirty"]["psnr"], array
        assert 0 < r["_coverage"]["fraction"] < 1


def test_cli_demo_prints_the_table(capsys):
    assert main(["demo", "--preset", "quick", "--arrays", "vla"]) == 0
    out = capsys.readouterr().out
    assert "| vla |" in out and "DDRM" in out and "CLEAN" in out


def test_cli_bad_arguments_exit_nonzero_without_traceback():
    for args in (["demo", "--K", "0"], ["demo", "--arrays", "lofar"], ["demo", "--sigma-y", "-1"], ["nope"]):
        proc = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr and "error" in proc.stderr, args
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "demo", "--K", "2000"], capture_output=True, text=True)
    assert proc.returncode == 2 and "K must" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_prepare_writes_a_store(prefect_harness, tmp_path, capsys):
    assert main(["prepare", "--N", "16", "--n-images", "64", "--root", str(tmp_path)]) == 0
    url = capsys.readouterr().out.split("dataset store: ")[1].strip()
    assert url.startswith(str(tmp_path)) and url.endswith(".zarr")


def test_cli_prepare_bad_source_or_store_is_a_readable_error(tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    from tests.conftest import free_port

    for args in (["prepare", "--source", str(tmp_path / "missing")], ["prepare", "--root", "s3://bucket/data"],
                 ["prepare", "--preset", "nope"], ["train", "--ray-address", f"127.0.0.1:{free_port()}"],
                 ["train", "--steps", "0"], ["train", "--root", "s3://bucket/data"]):
        proc = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "error" in proc.stderr, (args, proc.stderr)
