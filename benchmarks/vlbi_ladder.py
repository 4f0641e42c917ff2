"""The field ladder's rule against an oracle: on known skies observed on every shared EHT track, which rung
does the rule keep, and which rung would the truth have kept?

For each (track, sky) the sky is observed by ehtim as in ``benchmarks/vlbi_truth.py`` (thermal noise, 10 %
station gains, uncalibrated station phases), on the real track of one shared EHT file: M87 095 with the truth
benchmark's seed (its own files), M87 101 and Cen A with seed 54 (files no tuning before stop 54 saw). Then,
as ``radio-ddrm image FILE --N 64 --K 50 --samples 8`` does (the data term, the seeded held-out scans, the
seed from the file's SHA-256), every candidate field is imaged from the kept scans, and stored: its record
and per-closure held-out terms (``imager.scale.scored``, the command line's own), and the ρ_NX of its posterior
mean against the truth (10 µas, best shift). The rungs are scored from the store:

    kept     the rule (``imager.scale.choose``, the command line's own)
    oracle   the rung of highest ρ_NX (what no rule without the truth can do)
    smallest the smallest eligible field

    python -m benchmarks.vlbi_ladder [--tracks m87-095,m87-101,cena] [--skies all|ring40,...]
                                     [--out runs/benchmarks/vlbi_ladder.jsonl] [--rescore] [--options JSON] [--score-snr X]

The store is appended one row per (track, sky); a rerun computes only the rows it lacks (``--rescore``: none).
ρ_NX here is of each candidate's mean from the kept scans, not of the final image from all the data.
Last line: ``kept=<mean ρ> oracle=<mean ρ> smallest=<mean ρ> regret=<oracle - kept> off=<rows where the
rule's rung is not the oracle's>/<rows>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

import numpy as np
import torch

from benchmarks import vlbi_truth as vt
from tests import ehtim_files as ef

TRACKS = {"m87-095": (ef.M87_095, vt.SEED), "m87-101": (ef.M87_101, 54), "cena": (ef.CENA_100, 54)}


def ladder_row(sky: ef.Sky, track: str, work: str, options: Optional[dict] = None,
               score_snr: Optional[float] = None) -> dict:
    """One (track, sky): every candidate field as the command line images and scores it (module docstring);
    ``options`` change the configuration (``ImageConfig.to_dict``'s nested form), ``score_snr`` the scoring's
    closure S/N cut (None: the command line's, ``imager.scale.SCORE_SNR``)."""
    from configs.image import ImageConfig
    from ddrm.seeding import derive_seed
    from imager.file import input_checksum, read_held_out
    from imager.scale import HELD_SCANS, SCORE_SNR, candidate_scales, scan_holdout, scored
    from imager.terms import data_term, imager
    from stores.checkpoints import load_prior

    template, seed = TRACKS[track]
    path = ef.observe(sky, os.path.join(work, f"{track}-{sky.name}.uvfits"), template=template, seed=seed)
    cfg = ImageConfig.from_dict(_merged(ImageConfig.of(N=64, K=50, samples=8).to_dict(), options or {}))
    vis, _ = read_held_out(path, cfg)
    term = data_term(vis, cfg).data_term
    candidate, _ = imager(vis, cfg, load_prior(cfg.prior, torch.device("cpu")),
                          derive_seed(cfg.seed, "image", input_checksum(path)), term, None)
    held = scan_holdout(vis.time_jd, HELD_SCANS, cfg.seed)
    rows, t0 = [], time.perf_counter()
    for scale in candidate_scales(vis, cfg, term):
        imaged = candidate(scale, ~held if held.any() else None)
        rung, terms = scored(vis, held, imaged, scale, SCORE_SNR if score_snr is None else score_snr)
        rows.append({"candidate": rung.to_dict(), "terms": terms.tolist(),
                     "rho10": vt.rho_nx(sky, imaged.result.mean.numpy(), scale * 1e6)})
    return {"track": track, "sky": sky.name, "kind": sky.kind, "data_term": term, "candidates": rows,
            "seconds": time.perf_counter() - t0}


def _merged(base: dict, changes: dict) -> dict:
    """``base`` (``ImageConfig.to_dict``'s nested form) with ``changes`` (the same form, any subset) applied."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def rescore(rows: list[dict]) -> dict:
    """Per row and in all: the ρ_NX of the kept (``imager.scale.choose``), the oracle's and the smallest eligible
    rung."""
    from imager.product import Candidate
    from imager.scale import choose, eligible

    kept, oracle, smallest, off = [], [], [], 0
    for row in rows:
        c = row["candidates"]
        record = [Candidate.from_dict(x["candidate"]) for x in c]
        scores, fitted = [r.closure_score for r in record], [r.chi2_fitted for r in record]
        k = choose(record, [np.asarray(x["terms"]) for x in c])[1]
        o = max(range(len(c)), key=lambda i: c[i]["rho10"])
        s = max(eligible(scores, fitted) or [0])
        for store, i in ((kept, k), (oracle, o), (smallest, s)):
            store.append(c[i]["rho10"])
        off += k != o
        rungs = " ".join(f"{r.pixel_scale_arcsec * 1e6:.2f}:{r.closure_score:.3f}/{x['rho10']:.3f}"
                         for r, x in zip(record, c))
        print(f"{row['track']:8s} {row['sky']:13s} kept {record[k].pixel_scale_arcsec * 1e6:.2f} ({c[k]['rho10']:.3f}) "
              f"oracle {record[o].pixel_scale_arcsec * 1e6:.2f} ({c[o]['rho10']:.3f})  [{rungs}]")
    return {"kept": float(np.mean(kept)), "oracle": float(np.mean(oracle)), "smallest": float(np.mean(smallest)),
            "off": off, "rows": len(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", default=",".join(TRACKS))
    parser.add_argument("--skies", default="all")
    parser.add_argument("--out", default="runs/benchmarks/vlbi_ladder.jsonl")
    parser.add_argument("--work", default="runs/benchmarks/vlbi_ladder")
    parser.add_argument("--rescore", action="store_true", help="score the stored rows only")
    parser.add_argument("--score-snr", type=float, help="score on held-out closures of S/N >= this "
                        "(default: the command line's)")
    parser.add_argument("--options", default="{}", help="settings to change, as JSON in ImageConfig.to_dict's nested form, "
                        "e.g. '{\"likelihood\": {\"closure\": {\"snr_cut\": 0}}}' (its own --out)")
    args = parser.parse_args()
    options = json.loads(args.options)
    tracks = args.tracks.split(",")
    unknown = sorted(set(tracks) - set(TRACKS))
    if unknown:
        sys.exit(f"vlbi_ladder: unknown track {unknown[0]!r} (one of {', '.join(TRACKS)})")
    skies = vt.skies()
    if args.skies != "all":
        names = args.skies.split(",")
        skies = [s for s in skies if s.name in names]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    stored = [json.loads(line) for line in open(args.out)] if os.path.exists(args.out) else []
    done = {(r["track"], r["sky"]) for r in stored}
    if not args.rescore:
        from runtime.environment import configure_compute

        configure_compute(torch.get_num_threads())
        for track in tracks:
            for sky in skies:
                if (track, sky.name) in done:
                    continue
                row = ladder_row(sky, track, args.work, options, args.score_snr)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                stored.append(row)
                print(f"{track} {sky.name}: {row['seconds']:.0f} s", file=sys.stderr, flush=True)
    wanted = {s.name for s in skies}
    total = rescore([r for r in stored if r["track"] in tracks and r["sky"] in wanted])
    print(f"kept={total['kept']:.4f} oracle={total['oracle']:.4f} smallest={total['smallest']:.4f} "
          f"regret={total['oracle'] - total['kept']:.4f} off={total['off']}/{total['rows']}")


if __name__ == "__main__":
    main()
