"""The EHT default's cost against the code the closure-likelihood issue was filed on, in one run.

Issue 37's cost target: ``radio-ddrm image FILE --N 64 --K 50 --samples 8`` on an EHT file takes at most
twice what it took when the issue was filed (commit ``BASELINE``: three field scales, the visibility data
term; M87 095 about 47 s on that day's machine). Machines differ by 2× from day to day, so both commits
run here, now, on the same files: the baseline from ``git archive`` of its commit into a temporary folder,
the working tree as it is. Each run is a fresh process with a fresh ``--root`` (nothing reused), in the
order A B B A per file, so a drift in the machine's speed falls on both alike.

Files: the shared M87 095 file (the issue's own), and crescent44 (``benchmarks/vlbi_truth.py``'s sky and
seed, written by ehtim on the same track), where today's ``auto`` takes the closures.

    python -m benchmarks.vlbi_cost [--files m87,crescent44] [--mojave]

``--mojave`` also times today's default on the shared VLBA file at N = 150, K = 50, S = 8 against the
issue's absolute target of 300 s (the baseline took tens of minutes there; it is not rerun).

Lines: ``<file> then=<s>,<s> now=<s>,<s> ratio=<mean now / mean then>``, then
``ratio_max=<largest> target=2``; with ``--mojave``, ``mojave_s=<s> target_s=300``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests import ehtim_files as ef

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "8eac2ab"  # the last commit before the closure likelihood (0cef696): the code issue 37 timed
M87_095 = Path(ef.M87_095)
MOJAVE = Path(ef.SHARED) / "mojave.uvfits"
EHT_ARGS = ("--N", "64", "--K", "50", "--samples", "8")
RATIO_TARGET, MOJAVE_TARGET_S = 2.0, 300.0


def checkout(commit: str, into: str) -> str:
    """The tree of ``commit`` unpacked under ``into`` (no worktree left registered); its path."""
    folder, tar_path = os.path.join(into, commit), os.path.join(into, f"{commit}.tar")
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", tar_path, commit], check=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(folder, filter="data")
    return folder


def timed_image(code: str, path: Path, root: str, args: tuple[str, ...]) -> float:
    """Seconds of ``python -m flows.cli image path`` run with ``code``'s modules first on the path."""
    env = {**os.environ, "PYTHONPATH": code}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "flows.cli", "image", str(path), "--root", root, *args],
                         cwd=code, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{code}: image {path.name} failed: {run.stderr.strip().splitlines()[-1:]}")
    return seconds


def synthetic(name: str, folder: str) -> Path:
    """``vlbi_truth``'s sky ``name`` observed by ehtim on the M87 095 track with its default seed."""
    from benchmarks.vlbi_truth import SEED, skies

    sky = next(s for s in skies() if s.name == name)
    return Path(ef.observe(sky, os.path.join(folder, f"{name}.uvfits"), seed=SEED))


def abba(then: str, now: str, path: Path, work: str) -> tuple[list[float], list[float]]:
    """(baseline seconds, working-tree seconds) over the order then, now, now, then."""
    times: dict[str, list[float]] = {then: [], now: []}
    for i, code in enumerate((then, now, now, then)):
        times[code].append(timed_image(code, path, os.path.join(work, f"run{i}-{path.stem}"), EHT_ARGS))
    return times[then], times[now]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", default="m87,crescent44", help="comma-separated: m87 and/or vlbi_truth sky names")
    p.add_argument("--mojave", action="store_true", help="also time the VLBA default (N 150, K 50, S 8)")
    args = p.parse_args()
    if not M87_095.is_file():
        raise SystemExit(f"shared EHT file not found: {M87_095}")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="vlbi-cost-") as work:
        then, now = checkout(BASELINE, work), str(ROOT)
        for name in args.files.split(","):
            path = M87_095 if name == "m87" else synthetic(name, work)
            t_then, t_now = abba(then, now, path, work)
            ratio = (sum(t_now) / len(t_now)) / (sum(t_then) / len(t_then))
            ratios.append(ratio)
            print(f"{name} then={','.join(f'{t:.1f}' for t in t_then)} now={','.join(f'{t:.1f}' for t in t_now)} "
                  f"ratio={ratio:.2f}", flush=True)
        print(f"ratio_max={max(ratios):.2f} target={RATIO_TARGET:g}")
        if args.mojave:
            seconds = timed_image(now, MOJAVE, os.path.join(work, "mojave"), ("--N", "150", "--K", "50", "--samples", "8"))
            print(f"mojave_s={seconds:.1f} target_s={MOJAVE_TARGET_S:g}")


if __name__ == "__main__":
    main()
