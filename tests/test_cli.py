import os
import subprocess
import sys

import pytest

from flows.cli import build_parser, main
from tests.conftest import free_port

SUBCOMMANDS = ("survey", "prepare", "train", "reconstruct", "report", "serve")


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "example" in out and f"radio-ddrm {command}" in out


def test_cli_prepare_writes_a_store(prefect_harness, tmp_path, capsys):
    assert main(["prepare", "--N", "16", "--n-images", "64", "--root", str(tmp_path)]) == 0
    url = capsys.readouterr().out.split("dataset store: ")[1].strip()
    assert url.startswith(str(tmp_path)) and url.endswith(".zarr")


@pytest.mark.parametrize("args", [["survey", "--preset", "huge"], ["survey", "--arrays", "lofar"], ["survey", "--K", "0"],
                                  ["survey", "--sigma-y", "-1"], ["train", "--steps", "0"], ["nope"],
                                  ["train", "--max-failures", "x"], ["image", "f.uvfits", "--actors", "0"]])
def test_bad_arguments_are_refused_by_the_parser_with_a_readable_message(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2 and "error" in capsys.readouterr().err


def test_bad_values_and_unreachable_services_exit_nonzero_with_a_readable_message(tmp_path):
    s3 = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    cases = [
        ["survey", "--K", "2000"], ["survey", "--prior", "gaussian", "--root", "s3://b/r"],
        ["survey", "--ray-address", f"127.0.0.1:{free_port()}"], ["prepare", "--source", str(tmp_path / "missing")],
        ["prepare", "--root", "s3://bucket/data"], ["reconstruct", "--dataset", "x"], ["serve", "--only", "nope"],
        ["image", str(tmp_path / "missing.uvfits"), "--ray-address", f"127.0.0.1:{free_port()}"],
    ]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:  # independent processes: start-up time overlaps
        procs = list(pool.map(lambda args: run_cli(*args, env=s3), cases))
    for args, proc in zip(cases, procs):
        assert proc.returncode != 0 and "Traceback" not in proc.stderr and "error" in proc.stderr, (args, proc.stderr)

