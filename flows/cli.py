"""The ``radio-ddrm`` command line: survey, prepare, train, reconstruct, report and serve.

Each subcommand builds one validated config from a named preset plus overrides, checks the
store and the Ray cluster before anything starts, and runs the Prefect flow in-process (an
ephemeral Prefect server unless PREFECT_API_URL points at one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from typing import Any, Optional, Sequence

from configs import (ARRAY_CHOICES, PREPARE_PRESETS, RECONSTRUCT_PRESETS, SURVEY_PRESETS, TRAIN_PRESETS, prepare_preset,
                     reconstruct_preset, survey_preset, train_preset)
from configs.image import ImageConfig
from flows.cli_exit import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, install_sigterm, package_version
from flows.cli_options import add_config_options, non_negative, positive_int
from flows.cli_tools import export_prior_command, image_command, preflight
from runtime.environment import configure_local_environment

RAW = argparse.RawDescriptionHelpFormatter


IMAGE_DEFAULTS = ImageConfig()  # the image subcommand's help shows the config's own defaults


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _reconstruct_config(args: argparse.Namespace, base):
    over = _given(args, "n_images", "samples")
    if args.sigma_y:
        over["sigma_y"] = tuple(args.sigma_y)
    if args.arrays:
        over["arrays"] = tuple(args.arrays)
    if args.K:
        over["K_values"] = tuple(args.K)
    if getattr(args, "actors", None):
        over["num_actors"] = args.actors
    if getattr(args, "sampler", None):
        from ddrm.inverse.samplers import config_for

        over["samplers"] = tuple(config_for(name) for name in dict.fromkeys(args.sampler))
    if getattr(args, "multiscale", False):
        over["clean"] = replace(base.clean, multiscale=True)  # ValueError where radler is missing
    return replace(base, **over)


def _survey(args: argparse.Namespace) -> int:
    from flows.survey import survey

    config = survey_preset(args.preset)
    train = config.train
    if args.train_steps:
        train = replace(train, optim=replace(train.optim, steps=args.train_steps))
    config = replace(config, train=train, reconstruct=_reconstruct_config(args, config.reconstruct),
                     prior=args.prior or config.prior, fits=config.fits and not args.no_fits)
    preflight(args, ray=True)
    out = survey(config, root=args.root, ray_address=args.ray_address)
    print(out["markdown"])
    print(f"\nreport, tables and figures: {out['report']}  (table.md, metrics.csv, gallery.png, psnr_vs_K.png)")
    if out["fits"]:
        print(f"FITS images with WCS: {os.path.join(out['report'], 'fits')}")
    print(f"survey store: {out['survey']}\nprior: {out['checkpoint']}\ndataset: {out['dataset']}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from flows.prepare import prepare_dataset

    over = _given(args, "source", "N", "n_images", "seed", "normalisation", "fit", "name")
    if args.source and args.source != "synthetic" and args.n_images is None:
        over["n_images"] = None
    if args.strict:
        over["strict"] = True
    config = prepare_preset(args.preset, **over)
    if config.source == "firstgalaxydata":
        from sources.first_package import data_file
        data_file()  # ImportError with the install command, before any flow starts
    elif not config.synthetic and not os.path.exists(config.source):
        raise ValueError(f"image source {config.source!r} does not exist")
    preflight(args, ray=False)
    print(f"dataset store: {prepare_dataset(config, root=args.root)}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from flows.prepare import prepare_dataset
    from flows.train import train_prior

    config = train_preset(args.preset, **_given(args, "batch_size", "seed", "use_gpu", "cpus_per_worker",
                                                "max_failures"))
    if args.checkpoint_every:  # reports stay at a divisor of the checkpoint interval
        config = replace(config, checkpoint_every=args.checkpoint_every,
                         report_every=math.gcd(config.report_every, args.checkpoint_every))
    if args.workers:
        config = replace(config, num_workers=args.workers)
    if args.steps:
        config = replace(config, optim=replace(config.optim, steps=args.steps))
    preflight(args, ray=True)
    dataset = args.dataset or prepare_dataset(prepare_preset(args.preset), root=args.root)
    print(f"prior checkpoint: {train_prior(dataset, config, root=args.root, ray_address=args.ray_address)}")
    return 0


def _reconstruct(args: argparse.Namespace) -> int:
    import torch

    from flows.reconstruct import reconstruct_survey
    from stores.checkpoints import load_prior
    from stores.dataset import Dataset

    config = _reconstruct_config(args, reconstruct_preset(args.preset))
    Dataset(args.dataset)  # a missing or incomplete store fails here, before any flow starts
    if args.checkpoint != "gaussian":  # loads and verifies the weights (checksum, bounds) before Ray starts
        load_prior(args.checkpoint, torch.device("cpu"))
    preflight(args, ray=True)
    url = reconstruct_survey(args.checkpoint, args.dataset, config, root=args.root, ray_address=args.ray_address)
    print(f"survey store: {url}\nnext: radio-ddrm report --survey {url}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from flows.reconstruct import aggregate_metrics
    from stores.survey import load_results

    try:  # a missing or damaged store: one line, before any Prefect server starts
        load_results(args.survey)
    except Exception as err:  # noqa: BLE001: zarr, fsspec and s3fs raise many kinds for a missing store
        raise ValueError(f"{args.survey}: not a readable survey store ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})") from None
    configure_local_environment()
    out = aggregate_metrics(args.survey, fits=args.fits)
    print(out["markdown"])
    print(f"\nreport: {out['report']}" + (f" ({out['missing']} observations not finished)" if out["missing"] else ""))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flows.deployments import serve_deployments

    configure_local_environment()
    serve_deployments(args.only)
    return 0


def _common(p: argparse.ArgumentParser, presets: dict, ray: bool = True) -> None:
    p.add_argument("--preset", choices=sorted(presets), default="demo", help="named configuration (default demo)")
    p.add_argument("--root", default="runs", help="run root: a local folder or s3://bucket/prefix (default runs)")
    if ray:
        p.add_argument("--ray-address", dest="ray_address",
                       help="Ray cluster, e.g. ray://head:10001 (default: a local Ray on 127.0.0.1)")


def _survey_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arrays", nargs="+", choices=ARRAY_CHOICES, help="array presets or paper-<name> masks")
    p.add_argument("--K", nargs="+", type=positive_int, help="DDRM step counts")
    p.add_argument("--n-images", dest="n_images", type=positive_int, help="test images per array and K")
    p.add_argument("--samples", type=positive_int, help="posterior samples S per observation")
    p.add_argument("--sampler", nargs="+", help="samplers by name, side by side: ddrm, gibbs (default: the preset's)")
    p.add_argument("--sigma-y", dest="sigma_y", nargs="+", type=non_negative,
                   help="simulated thermal noise: the std of each measured visibility coordinate (real and "
                        "imaginary part) in units of the image's peak brightness (images scaled to [0, 1]); 0.02 "
                        "puts the noise per visibility at 2 %% of the peak")
    p.add_argument("--multiscale", action="store_true",
                   help="also radler's multiscale CLEAN, as extra table rows (needs radio-ddrm[classical])")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radio-ddrm", description=__doc__, formatter_class=RAW)
    parser.add_argument("--version", action="version", version=f"radio-ddrm {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("survey", formatter_class=RAW, help="the whole survey: prepare, train, reconstruct, report",
                       epilog="examples:\n  radio-ddrm survey                          # the demo, ~7 min on 2 CPU cores\n"
                              "  radio-ddrm survey --prior gaussian --K 20 100   # analytic prior, no training\n"
                              "  radio-ddrm survey --preset paper --ray-address ray://head:10001 --root s3://b/runs")
    _common(s, SURVEY_PRESETS)
    _survey_options(s)
    s.add_argument("--prior", help="'trained' (train a DDPM here), 'gaussian' (fitted analytic prior) or a packaged "
                                   "prior's name, e.g. 'first' (no training)")
    s.add_argument("--train-steps", dest="train_steps", type=positive_int, help="override the prior's steps")
    s.add_argument("--no-fits", dest="no_fits", action="store_true", help="skip the FITS files")
    s.set_defaults(func=_survey)

    p = sub.add_parser("prepare", formatter_class=RAW, help="a dataset store (synthetic or real images) as zarr",
                       epilog="examples:\n  radio-ddrm prepare --preset demo\n"
                              "  radio-ddrm prepare --preset first     # FIRST galaxies of the firstgalaxydata package\n"
                              "  radio-ddrm prepare --source ./cutouts --N 128 --fit resample --root s3://my-bucket/radio-ddrm\n"
                              "S3 endpoint and credentials come from the AWS environment (AWS_ENDPOINT_URL, ...).")
    _common(p, PREPARE_PRESETS, ray=False)
    p.add_argument("--source", help="'synthetic', a folder of FITS cutouts, or a .npy/.npz stack")
    p.add_argument("--N", type=positive_int, help="image size in pixels")
    p.add_argument("--n-images", dest="n_images", type=positive_int, help="count (synthetic) or cap (real)")
    p.add_argument("--seed", type=int)
    p.add_argument("--name", help="dataset name (the store is <root>/data/<name>-<hash>.zarr)")
    p.add_argument("--normalisation", choices=["max", "global"])
    p.add_argument("--fit", choices=["crop", "resample"], help="how real images are brought to N")
    p.add_argument("--strict", action="store_true", help="fail on a bad input instead of skipping it")
    p.set_defaults(func=_prepare)

    t = sub.add_parser("train", formatter_class=RAW, help="train the DDPM prior with Ray Train",
                       epilog="examples:\n  radio-ddrm train --preset demo     # prepares the demo dataset if needed\n"
                              "  radio-ddrm train --preset paper --dataset runs/data/first-mirabest-<hash>.zarr --use-gpu\n"
                              "A rerun resumes from the latest checkpoint; a finished run is reused.")
    _common(t, TRAIN_PRESETS)
    t.add_argument("--dataset", help="dataset store URL from 'radio-ddrm prepare' (default: the preset's)")
    t.add_argument("--workers", type=positive_int, help="Ray Train workers (default: fill the cluster)")
    t.add_argument("--cpus-per-worker", dest="cpus_per_worker", type=positive_int)
    t.add_argument("--batch-size", dest="batch_size", type=positive_int, help="per worker")
    t.add_argument("--steps", type=positive_int, help="optimiser steps")
    t.add_argument("--seed", type=int)
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=positive_int, help="steps between checkpoints")
    t.add_argument("--max-failures", dest="max_failures", type=int,
                   help="worker failures survived by restarting from the last checkpoint (Ray Train FailureConfig)")
    gpu = t.add_mutually_exclusive_group()
    gpu.add_argument("--use-gpu", dest="use_gpu", action="store_true", default=None)
    gpu.add_argument("--cpu", dest="use_gpu", action="store_false", help="CPUs even if GPUs exist")
    t.set_defaults(func=_train)

    r = sub.add_parser("reconstruct", formatter_class=RAW, help="reconstruct a survey on a pool of Ray actors",
                       epilog="examples:\n  radio-ddrm reconstruct --checkpoint runs/priors/<run>/checkpoint_<t> "
                              "--dataset runs/data/<store>.zarr\n"
                              "  radio-ddrm reconstruct --checkpoint gaussian --dataset <store> --arrays vla --K 10 100")
    _common(r, RECONSTRUCT_PRESETS)
    r.add_argument("--checkpoint", default="first",
                   help="prior checkpoint URL, a packaged prior, or 'gaussian' (default: the shipped FIRST prior)")
    r.add_argument("--dataset", required=True, help="dataset store URL")
    _survey_options(r)
    r.add_argument("--actors", type=positive_int, help="actors in the pool (default: fill the cluster)")
    r.set_defaults(func=_reconstruct)

    rep = sub.add_parser("report", formatter_class=RAW, help="tables, figures and FITS of a survey store",
                         epilog="example:\n  radio-ddrm report --survey runs/surveys/survey-demo-<hash>.zarr --fits")
    rep.add_argument("--survey", required=True, help="survey store URL")
    rep.add_argument("--fits", action="store_true", help="also write FITS images with WCS")
    rep.set_defaults(func=_report)

    im = sub.add_parser("image", formatter_class=RAW, help="image real visibilities (uvfits, Measurement Sets) with the prior",
                        epilog="examples:\n  radio-ddrm image obs.uvfits --N 150 --pixel-scale 1.8arcsec\n"
                               "  radio-ddrm image *.uvfits --weighting briggs --robust 0 --K 50 --samples 16\n"
                               "  radio-ddrm image obs.ms   (a Measurement Set: pip install 'radio-ddrm[ms]')\n"
                               "  radio-ddrm image 's3://bucket/obs/*.uvfits' --root s3://bucket/run --ray-address "
                               "127.0.0.1:6390\n"
                               "Outputs, per file, in <root>/images/<run key>/<file name>-<hash>/: <name>-image.fits "
                               "(the posterior mean restored with the CLEAN beam, Jy/beam), <name>-model.fits (the mean, "
                               "Jy/pixel), -std, -residual, -psf, -dirty and -clean.fits, image.fits (all in one), "
                               "panel.png, diagnostics.png, summary.json; <root>/images/<run key>/run.json")
    im.add_argument("files", nargs="+", help="uvfits files or Measurement Set folders")
    add_config_options(im, IMAGE_DEFAULTS)  # every imaging setting, from configs.image.ImageConfig's fields
    im.add_argument("--root", default="runs", help="output root (default runs)")
    im.add_argument("--ray-address", dest="ray_address",
                    help="image on a pool of Ray actors of this cluster (the image_observations flow: globs and "
                         "s3:// files, a rerun images only what is missing)")
    im.add_argument("--actors", type=positive_int, help="Ray actors (implies the flow, on a local Ray by default)")
    im.set_defaults(func=image_command)

    ex = sub.add_parser("export-prior", formatter_class=RAW, help="ship a trained checkpoint inside the package",
                        epilog="example:\n  radio-ddrm export-prior --checkpoint runs/priors/prior-first-<hash>/checkpoint_<t>"
                               " --name first")
    ex.add_argument("--checkpoint", required=True, help="checkpoint URL of a finished run")
    ex.add_argument("--name", required=True, help="packaged name (ddrm/data/priors/<name>)")
    ex.add_argument("--card-extra", dest="card_extra", help="Markdown file appended to the model card")
    ex.set_defaults(func=export_prior_command)

    sv = sub.add_parser("serve", formatter_class=RAW, help="serve the scheduled deployments from this process",
                        epilog="example:\n  prefect server start &   # UI at http://127.0.0.1:4200\n"
                               "  PREFECT_API_URL=http://127.0.0.1:4200/api radio-ddrm serve")
    sv.add_argument("--only", nargs="+", help="deployment names to serve (default: all)")
    sv.set_defaults(func=_serve)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    install_sigterm()
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return args.func(args)
    except (ValueError, OSError, RuntimeError, ImportError) as err:
        from stores.storage import redact

        print(f"radio-ddrm: error: {redact(err)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        print("radio-ddrm: interrupted; rerun the same command to resume (finished products are kept)",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
