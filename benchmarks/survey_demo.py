"""The README's demo survey end to end (`radio-ddrm survey`): total seconds and each stage's share.

Runs the `survey` flow with the demo preset into a fresh temporary root (a fresh Prefect ephemeral
server and local Ray, as on a new machine) and reads each subflow's run time from the Prefect API.
Goal: under 600 s on a 2-core CPU.
Last line: ``survey_demo_seconds=<x> prepare=<x> train=<x> reconstruct=<x> aggregate=<x>``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from runtime.environment import configure_local_environment

STAGES = {"prepare": "prepare_dataset", "train": "train_prior", "reconstruct": "reconstruct_survey",
          "aggregate": "aggregate_metrics"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", help="copy the report folder (tables, figures) here")
    args = parser.parse_args()
    configure_local_environment()
    t0 = time.perf_counter()
    from flows.survey import survey  # imports count: a user's command pays them too
    from prefect.client.orchestration import get_client

    with tempfile.TemporaryDirectory() as root:
        out = survey("demo", root=root)
        total = time.perf_counter() - t0
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs()
            names = {r.id: client.read_flow(r.flow_id).name for r in runs}
            seconds = {names[r.id]: (r.end_time - r.start_time).total_seconds() for r in runs
                       if r.start_time and r.end_time}
        if args.keep:
            shutil.copytree(out["report"], args.keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("fits"))
    print(out["markdown"])
    shares = {k: seconds.get(v, float("nan")) for k, v in STAGES.items()}
    print("stage shares: " + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in shares.items()))
    print(f"survey_demo_seconds={total:.1f} " + " ".join(f"{k}={v:.1f}" for k, v in shares.items()))


if __name__ == "__main__":
    main()
