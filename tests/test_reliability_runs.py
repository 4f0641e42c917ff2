"""Careless runs: products of another input left behind or deleted, JSON that strict parsers refuse, settings
the data cannot support, a full disk, an input on S3, a symlink loop among the inputs with and without Ray
actors, and Ctrl-C. Real files, real processes, the loopback S3 server and a real Ray."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from configs.image import ImageConfig
from flows.cli import main
from stores.jsonio import dumps
from tests.test_reliability import EHT, MOJAVE, TOY, _image, needs_files

pytestmark = needs_files
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from flows.cli import main; sys.exit(main())"]


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as RFC 8259 and JavaScript's JSON.parse do."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# ---- 4, 14. products whole or absent; the seed from the bytes ------------------------------------------

def test_products_are_whole_or_absent_and_reuse_checks_every_checksum(tmp_path, capsys):
    a, b = tmp_path / "a.uvfits", tmp_path / "b.uvfits"
    shutil.copy(MOJAVE, a)
    shutil.copy(MOJAVE, b)
    root = tmp_path / "r"
    rc, lines, _ = _image(capsys, a, b, *TOY, "--root", root)
    assert rc == 0
    folder = Path(lines[0]["fits"]).parent
    summary = json.loads((folder / "summary.json").read_text())
    assert {"image.fits", "panel.png", "diagnostics.png", "a-image.fits", "a-model.fits"} <= set(summary["products"])
    assert summary["products"]["image.fits"]["sha256"] == hashlib.sha256((folder / "image.fits").read_bytes()).hexdigest()
    same = [fits.getdata(line["fits"]) for line in lines[:2]]  # the posterior mean
    # the same bytes under two names: the same images (seeded by content; to the threads' rounding, 1e-3 here, where
    # seeds from the names differ by the posterior's whole spread)
    assert np.abs(same[0] - same[1]).max() < 0.01 * np.abs(same[0]).max()

    os.remove(folder / "image.fits")  # a deleted product: imaged again, not "reused"
    rc, again, _ = _image(capsys, a, *TOY, "--root", root)
    assert rc == 0 and not again[0]["reused"] and (folder / "image.fits").exists()
    (folder / "panel.png").write_bytes(b"")  # an emptied one likewise
    rc, again, _ = _image(capsys, a, *TOY, "--root", root)
    assert rc == 0 and not again[0]["reused"] and (folder / "panel.png").stat().st_size > 0
    rc, again, _ = _image(capsys, a, *TOY, "--root", root)
    assert rc == 0 and again[0]["reused"]

    (folder / "gains.csv").write_text("interval,antenna\n")  # an earlier input's product...
    shutil.copy(EHT, a)  # ...and the input replaced: the stale product goes
    rc, again, _ = _image(capsys, a, *TOY, "--root", root)
    assert rc == 0 and not again[0]["reused"] and not (folder / "gains.csv").exists()
    a.write_bytes(b"SIMPLE  =  garbage")  # a bad replacement: no old product stays beside nothing
    rc, again, _ = _image(capsys, a, *TOY, "--root", root)
    assert rc == 1 and sorted(p.name for p in folder.iterdir()) == []


# ---- 7. strict JSON ------------------------------------------------------------------------------------

def test_summary_and_run_record_are_strict_json(tmp_path, capsys):
    assert _strict(dumps({"a": [float("nan"), {"b": np.float32("inf")}], "c": (1.5, -np.inf)})) == \
        {"a": [None, {"b": None}], "c": [1.5, None]}
    rc, lines, _ = _image(capsys, MOJAVE, *TOY, "--solint", "inf", "--root", tmp_path / "r")
    assert rc == 0
    texts = [Path(lines[-1]["run"]).read_text(), (Path(lines[0]["fits"]).parent / "summary.json").read_text()]
    record = _strict(texts[0])
    assert record["settings"]["selfcal"]["solint"] is None and _strict(texts[1])["observation"]["file"] == str(MOJAVE)
    if shutil.which("node"):  # JavaScript's own parser, where node is installed
        for text in texts:
            subprocess.run(["node", "-e", "JSON.parse(require('fs').readFileSync(0, 'utf8'))"], input=text,
                           text=True, check=True, timeout=60)


# ---- 9, 10, 11. settings the data cannot support ----------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--pixel-scale", "1e-12arcsec"], "finer than the data support"),
    (["--selfcal-gains", "draw", "--likelihood", "gridded"], "needs likelihood 'exact'"),
])
def test_settings_the_data_cannot_support_stop_the_run_with_one_line(tmp_path, capsys, args, message):
    rc, lines, err = _image(capsys, MOJAVE, "--N", "32", "--K", "2", "--samples", "1", "--selfcal", "phase", *args,
                            "--root", tmp_path / "r")
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and not lines
    assert not list(tmp_path.rglob("summary.json"))


@pytest.mark.parametrize("flag, value", [("--field-fractions", "1e-6"), ("--solint", "1e-300"), ("--solint", "nan")])
def test_unbounded_values_are_refused_by_the_parser(capsys, flag, value):
    with pytest.raises(SystemExit) as stop:
        main(["image", str(MOJAVE), flag, value])
    assert stop.value.code == 2 and value in capsys.readouterr().err
    with pytest.raises(ValueError):
        ImageConfig.of(**({"field_fractions": (float(value),)} if flag == "--field-fractions" else {"solint": float(value)}))


# ---- 14. a full disk -----------------------------------------------------------------------------------

def _full_disk(path: Path) -> bool:
    """A 64 kB tmpfs at ``path`` (root only); False where it cannot be mounted."""
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_stops_the_run_naming_the_file_and_leaves_nothing_half_written(tmp_path):
    disk = tmp_path / "disk"
    if not _full_disk(disk):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = subprocess.run([*CLI, "image", str(MOJAVE), *TOY, "--root", str(disk)], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip().splitlines()[-1].startswith(f"radio-ddrm: error: {MOJAVE}: cannot write its products")
        assert "No space left on device" in run.stderr and not [p for p in disk.rglob("*") if p.is_file()]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ---- 12. an S3 input in this process ---------------------------------------------------------------------

def test_an_s3_input_is_imaged_without_actors(s3_bucket, capsys):
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).put(str(MOJAVE), f"{s3_bucket[5:]}/in/one.uvfits")
    rc, lines, err = _image(capsys, f"{s3_bucket}/in/one.uvfits", *TOY, "--root", f"{s3_bucket}/out")
    assert rc == 0, err
    assert lines[0]["file"] == f"{s3_bucket}/in/one.uvfits" and lines[0]["fits"].startswith(f"{s3_bucket}/out/")


# ---- 3. one rule in both modes --------------------------------------------------------------------------

def test_a_symlink_loop_is_the_same_named_skip_with_and_without_actors(ray_session, tmp_path, capsys):
    loop = tmp_path / "loop.uvfits"
    os.symlink(loop, loop)
    skipped = []
    for mode in ([], ["--actors", "1"]):
        rc, lines, err = _image(capsys, loop, *TOY, "--root", tmp_path / "r", *mode)
        assert rc == 1 and "Traceback" not in err, err
        skipped.append(lines[-1]["skipped"])
        assert _strict(Path(lines[-1]["run"]).read_text())["skipped"] == skipped[-1]
    assert skipped[0] == skipped[1] and "symbolic links" in skipped[0][0]["error"]


# ---- 13. Ctrl-C ----------------------------------------------------------------------------------------------

def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a terminal's process has it (xdist workers ignore SIGINT)


@pytest.mark.parametrize("mode", [[], ["--actors", "1"]])
def test_ctrl_c_gives_one_line_and_exit_130_in_both_modes(tmp_path, mode):
    proc = subprocess.Popen([*CLI, "image", str(EHT), "--N", "64", "--K", "200", "--samples", "4",
                             "--field-fractions", "1", "--root", str(tmp_path / "r"), *mode], cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if mode:  # the flow logs its plan once the actors are about to start
        seen, deadline = "", time.monotonic() + 120
        while "to image" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        time.sleep(3)
    else:  # the run under way: its root written (a loaded machine imports for seconds first)
        deadline = time.monotonic() + 120
        while not (tmp_path / "r").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    # one line of ours (Prefect's own log lines say the flow crashed; the temporary server's stop follows)
    assert "Traceback" not in err and "radio-ddrm: interrupted; rerun the same command" in err, err[-3000:]
    assert not list(tmp_path.rglob("summary.json"))
