"""The held-out predictive check on the shared real files (no truth): ``--holdout 0.2`` at the VLBI defaults
(N = 64, K = 50, S = 8), each file's check inputs kept so that ``--rescore`` scores them again with the
current check without imaging.

    python -m benchmarks.predictive_shared [--files mojave,SR1_M87_2017_095] [--out runs/benchmarks/predictive_shared.json]
                                          [--rescore]

Per file: the data term, the check the recalibration was fitted on, (c, k), each check's shares inside the
68 % and 95 % intervals as drawn, and the recalibrated check cross-fitted between two seeded halves of the
blocks at the scale c and the 95 % bound k on |z| fitted on the other half (also with k = 2; issue target:
0.60-0.76 at 68 %, 0.90-0.98 at 95 %). Files are read from ``../shared/data/visibilities`` (skipped with a
message where absent). Last line: ``files=<n> in_target=<k>`` (cross-fitted shares in the
target at both levels).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pickle
import tempfile
from types import SimpleNamespace

import torch

from benchmarks.predictive_truth import image_and_keep
from configs.image import ImageConfig
from imager.predictive import predictive_summary

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "visibilities")
SETTINGS = {"N": 64, "K": 50, "samples": 8, "holdout": 0.2}
CHECKS = ("visibilities", "visibility_blocks", "closure_phases", "closure_phase_blocks", "log_closure_amplitudes",
          "log_closure_amplitude_blocks")


def score(kept: str) -> dict:
    k = pickle.load(open(kept, "rb"))
    imaged = SimpleNamespace(result=SimpleNamespace(samples=k["samples"], likelihood=k["data_term"]))
    pred, _, _ = predictive_summary(k["held"], k["held_raw"], k["kept_raw"], imaged, k["scale"], k["seed"])
    return {"data_term": k["data_term"], "seconds": k["seconds"], "predictive": pred}


def in_target(check: dict) -> bool:
    return bool(check) and check.get("coverage_68") is not None and 0.60 <= check["coverage_68"] <= 0.76 \
        and 0.90 <= check["coverage_95"] <= 0.98


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", default="", help="file name stems to image (default: every .uvfits)")
    p.add_argument("--out", default="runs/benchmarks/predictive_shared.json")
    p.add_argument("--rescore", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    folder = os.path.splitext(args.out)[0]
    os.makedirs(folder, exist_ok=True)
    paths = sorted(glob.glob(os.path.join(SHARED, "*.uvfits")))
    if not paths:
        print(f"no shared files under {os.path.abspath(SHARED)}: nothing to image")
    wanted = [s for s in args.files.split(",") if s]
    with tempfile.TemporaryDirectory() as work:
        for path in [] if args.rescore else paths:
            stem = os.path.basename(path)[:-7]
            kept = os.path.join(folder, stem + ".pkl")
            if os.path.isfile(kept) or (wanted and not any(stem.startswith(w) for w in wanted)):
                continue
            image_and_keep(path, ImageConfig.of(**SETTINGS), work, kept)
            print(f"imaged {stem}", flush=True)
    rows = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".pkl"):
            rows[name[:-4]] = score(os.path.join(folder, name))
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    fmt = lambda c: "—" if not c or c.get("coverage_68") is None else \
        f"{c['coverage_68']:.2f} / {c['coverage_95']:.2f}"  # noqa: E731
    print("| file | data term | " + " | ".join(CHECKS)
          + " | fitted on | (c, k) | recalibrated, cross-fitted | with k = 2 |")
    print("|---|---|" + "---|" * (len(CHECKS) + 4))
    for stem, r in rows.items():
        pr = r["predictive"]
        print(f"| {stem} | {r['data_term']} | " + " | ".join(fmt(pr.get(k)) for k in CHECKS)
              + f" | {pr.get('conformal_fitted_on')} | ({pr.get('conformal_scale', float('nan')):.2f}, "
              f"{pr.get('tail_bound_95', float('nan')):.2f}) | "
              f"{fmt(pr.get('recalibrated_cross_fitted'))} | {fmt(pr.get('recalibrated_cross_fitted_two_sigma'))} |")
    ok = sum(in_target(r["predictive"].get("recalibrated_cross_fitted")) for r in rows.values())
    print(f"files={len(rows)} in_target={ok}")


if __name__ == "__main__":
    main()
