"""The ``radio-ddrm`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Optional, Sequence

from tasks.runtime import configure_local_environment


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import DEMO_PRESETS, format_table, run_demo

    cfg = DEMO_PRESETS[args.preset]
    overrides = {k: v for k, v in (("K", args.K), ("samples", args.samples), ("sigma_y", args.sigma_y),
                                   ("seed", args.seed)) if v is not None}
    cfg = replace(cfg, **overrides)
    print(f"radio-ddrm demo: N={cfg.N}, K={cfg.K}, S={cfg.samples}, sigma_y={cfg.sigma_y} "
          "(analytic Gaussian prior; coverage from the real VLA B / EHT 2017 / ALMA C-5 layouts)")
    if args.arrays:
        cfg = replace(cfg, arrays=tuple(args.arrays))
    results = run_demo(cfg)
    print(format_table(results))
    for array, result in results.items():
        print(f"{array}: DDRM sampling {result['DDRM']['t_sampling']:.2f} s for {cfg.samples} samples")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from flows.prepare import prepare_dataset
    from tasks.config import prepare_preset
    from tasks.storage import check_reachable

    overrides = {k: v for k, v in (("source", args.source), ("N", args.N), ("n_images", args.n_images),
                                   ("seed", args.seed), ("normalisation", args.normalisation), ("fit", args.fit),
                                   ("name", args.name))
                 if v is not None}
    if args.source and args.source != "synthetic" and args.n_images is None:
        overrides["n_images"] = None
    if args.strict:
        overrides["strict"] = True
    config = prepare_preset(args.preset, **overrides)
    if not config.synthetic and not os.path.exists(config.source):  # fail before starting Prefect
        raise ValueError(f"image source {config.source!r} does not exist")
    check_reachable(args.root)
    configure_local_environment()
    url = prepare_dataset(config, root=args.root)
    print(f"dataset store: {url}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from flows.prepare import prepare_dataset
    from flows.train import train_prior
    from tasks.config import PREPARE_PRESETS, prepare_preset, train_preset
    from tasks.ray_runtime import ensure_ray
    from tasks.storage import check_reachable

    config = train_preset(args.preset)
    overrides = {k: v for k, v in (("num_workers", args.workers), ("cpus_per_worker", args.cpus_per_worker),
                                   ("batch_size", args.batch_size), ("seed", args.seed)) if v is not None}
    if args.use_gpu is not None:
        overrides["use_gpu"] = args.use_gpu
    if args.steps is not None:
        overrides["optim"] = replace(config.optim, steps=args.steps)
    config = replace(config, **overrides)
    check_reachable(args.root)
    configure_local_environment()
    ensure_ray(args.ray_address)  # a bad address fails here, before any flow starts
    dataset = args.dataset or prepare_dataset(prepare_preset(args.preset if args.preset in PREPARE_PRESETS
                                                             else "demo"), root=args.root)
    checkpoint = train_prior(dataset, config, root=args.root, ray_address=args.ray_address)
    print(f"prior checkpoint: {checkpoint}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radio-ddrm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="reconstruct a synthetic source with DDRM and print metrics",
                          epilog="example: radio-ddrm demo --preset quick --K 50")
    demo.add_argument("--preset", choices=["default", "quick"], default="default")
    demo.add_argument("--K", type=_positive_int, help="DDRM steps (1..1000)")
    demo.add_argument("--samples", type=_positive_int, help="posterior samples S")
    demo.add_argument("--sigma-y", dest="sigma_y", type=_non_negative, help="noise std per measured coordinate")
    demo.add_argument("--seed", type=int)
    demo.add_argument("--arrays", nargs="+", choices=["vla", "eht", "alma"], help="array presets to observe with")
    demo.set_defaults(func=_demo)

    from tasks.config import PREPARE_PRESETS

    prep = sub.add_parser(
        "prepare", help="prepare a dataset store (synthetic galaxies or real images) as zarr, local or s3://",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  radio-ddrm prepare --preset demo\n"
               "  radio-ddrm prepare --preset first --source ../shared/data/first-mirabest/mirabest_train_uint8.npz\n"
               "  radio-ddrm prepare --source ./cutouts --N 128 --root s3://my-bucket/radio-ddrm\n"
               "S3 endpoint and credentials come from the AWS environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).")
    prep.add_argument("--preset", choices=sorted(PREPARE_PRESETS), default="demo")
    prep.add_argument("--root", default="runs", help="run root, a local folder or s3://bucket/prefix; "
                      "datasets go to <root>/data (default runs)")
    prep.add_argument("--source", help="'synthetic', a folder of FITS cutouts, or a .npy/.npz stack")
    prep.add_argument("--N", type=_positive_int, help="image size in pixels")
    prep.add_argument("--n-images", dest="n_images", type=_positive_int, help="count (synthetic) or cap (real)")
    prep.add_argument("--seed", type=int)
    prep.add_argument("--name", help="dataset name (the store is <root>/data/<name>-<hash>.zarr)")
    prep.add_argument("--normalisation", choices=["max", "global"])
    prep.add_argument("--fit", choices=["crop", "resample"], help="how real images are brought to N")
    prep.add_argument("--strict", action="store_true", help="fail on the first bad input instead of skipping it")
    prep.set_defaults(func=_prepare)

    from tasks.config import TRAIN_PRESETS

    train = sub.add_parser(
        "train", help="train the DDPM prior with Ray Train (local Ray on 127.0.0.1, or --ray-address)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  radio-ddrm train --preset demo            # prepares the demo dataset if needed\n"
               "  radio-ddrm train --dataset runs/data/first-mirabest-<hash>.zarr --preset paper --use-gpu\n"
               "  radio-ddrm train --preset paper --ray-address ray://head:10001 --root s3://bucket/radio-ddrm\n"
               "A rerun resumes from the latest checkpoint; a finished run is reused.")
    train.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="demo")
    train.add_argument("--dataset", help="dataset store URL from 'radio-ddrm prepare' (default: the preset's)")
    train.add_argument("--root", default="runs", help="run root; checkpoints go to <root>/priors (default runs)")
    train.add_argument("--ray-address", dest="ray_address", help="Ray cluster address (default: start a local Ray)")
    train.add_argument("--workers", type=_positive_int, help="Ray Train workers (default: fill the cluster)")
    train.add_argument("--cpus-per-worker", dest="cpus_per_worker", type=_positive_int)
    train.add_argument("--batch-size", dest="batch_size", type=_positive_int, help="per worker")
    train.add_argument("--steps", type=_positive_int, help="optimiser steps")
    train.add_argument("--seed", type=int)
    gpu = train.add_mutually_exclusive_group()
    gpu.add_argument("--use-gpu", dest="use_gpu", action="store_true", default=None)
    gpu.add_argument("--cpu", dest="use_gpu", action="store_false", help="train on CPUs even if GPUs exist")
    train.set_defaults(func=_train)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"radio-ddrm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
