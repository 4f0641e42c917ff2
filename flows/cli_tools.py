"""Handlers of the ``radio-ddrm image`` and ``export-prior`` subcommands, and the preflight every flow-running
subcommand makes (the parser is in flows/cli.py)."""

from __future__ import annotations

import argparse
import os
import sys

from runtime.environment import configure_local_environment


def preflight(args: argparse.Namespace, ray: bool) -> None:
    """Fail with a readable message before any flow starts: unreachable store or Ray cluster."""
    from stores.storage import check_reachable

    check_reachable(args.root)
    configure_local_environment()
    if ray:
        from runtime.ray_cluster import ensure_ray

        ensure_ray(args.ray_address)


def image_command(args: argparse.Namespace) -> int:
    """Image visibility files: in this process one after another, or with ``--ray-address``/``--actors``
    through the ``image_observations`` flow on a pool of Ray actors (globs and s3:// files, resumable).
    A bad file is reported and skipped unless --strict."""
    import json

    import torch

    from configs.image import ImageConfig, image_sampler, parse_angle_arcsec
    from sources.uvfits import VisibilityFileError
    from stores.checkpoints import load_prior
    from tasks.image import image_file

    given = {k: getattr(args, k) for k in ("N", "weighting", "robust", "prior", "K", "samples", "noise")
             if getattr(args, k) is not None}  # the defaults are ImageConfig's, defined once
    cfg = ImageConfig(**given, pixel_scale_arcsec=parse_angle_arcsec(args.pixel_scale) if args.pixel_scale else None,
                      sampler=image_sampler(args.sampler), strict=args.strict)
    configure_local_environment()
    if args.ray_address or args.actors:
        return _image_flow(args, cfg)
    prior = load_prior(cfg.prior, torch.device("cpu"))
    skipped = []
    for path in args.files:
        try:
            summary = image_file(path, cfg, root=args.root, prior=prior)
        except (VisibilityFileError, FileNotFoundError) as err:
            if cfg.strict:
                raise ValueError(str(err)) from None
            skipped.append(str(err))
            print(f"skipped {err}", file=sys.stderr)
            continue
        print(json.dumps({k: summary[k] for k in ("file", "fits", "png", "total_flux_jy", "total_flux_clean_jy",
                                                   "chi2_per_coordinate", "seconds")}))
    return 1 if skipped and len(skipped) == len(args.files) else 0


def _image_flow(args: argparse.Namespace, cfg) -> int:
    import json

    from flows.image import image_observations

    preflight(args, ray=True)
    out = image_observations(args.files, cfg, root=args.root, ray_address=args.ray_address, num_actors=args.actors)
    for row in out["rows"]:
        print(json.dumps(row))
    return 1 if out["skipped"] and not out["images"] else 0


def export_prior_command(args: argparse.Namespace) -> int:
    """Ship a trained checkpoint into the package (EMA weights, float16, with card and checksum)."""
    import json
    from importlib import resources

    from stores import packaged, storage
    from stores.checkpoints import read_meta, read_state
    from reporting.plots import loss_curve_png
    from tasks.train import prior_samples_png, read_history

    run_dir = args.checkpoint.rstrip("/").rsplit("/", 1)[0]
    meta, history = read_meta(args.checkpoint).to_json(), read_history(run_dir)
    dest = str(resources.files(packaged.PACKAGE).joinpath(args.name))
    extra = open(args.card_extra).read() if args.card_extra else ""
    packaged.export(read_state(args.checkpoint), meta, dest, packaged.model_card(args.name, meta, history, extra))
    made = {"loss.png": lambda: loss_curve_png([r["step"] for r in history], [r["loss"] for r in history],
                                               title=f"prior {args.name}"),
            "samples.png": lambda: prior_samples_png(args.checkpoint)[0]}
    for png, make in made.items():  # the run's own figures, or made now (a run cut short has none)
        data = storage.read_bytes(storage.join(run_dir, png)) or make()
        open(os.path.join(dest, png), "wb").write(data)
    print(json.dumps({"packaged": dest, "sha256": packaged.sha256(os.path.join(dest, packaged.WEIGHTS)),
                      "bytes": os.path.getsize(os.path.join(dest, packaged.WEIGHTS))}))
    return 0
