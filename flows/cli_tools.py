"""Handlers of the ``radio-ddrm image`` and ``export-prior`` subcommands, and the preflight every flow-running
subcommand makes (the parser is in flows/cli.py)."""

from __future__ import annotations

import argparse
import os
import sys

from runtime.allocator import keep_freed_memory
from runtime.environment import configure_local_environment


def preflight(args: argparse.Namespace, ray: bool) -> None:
    """Fail with a readable message before any flow starts: unreachable store or Ray cluster."""
    from stores.storage import check_writable

    check_writable(args.root)
    configure_local_environment()
    if ray:
        from runtime.ray_cluster import ensure_ray

        ensure_ray(args.ray_address)


EXIT_SKIPPED = 1  # ``radio-ddrm image``: some files were skipped (listed in run.json and the last line)


def image_command(args: argparse.Namespace) -> int:
    """Image visibility files: in this process one after another, or with ``--ray-address``/``--actors``
    through the ``image_observations`` flow on a pool of Ray actors (globs and s3:// files). Both modes write
    the same folders and reuse the same finished results (``imager.file``). Before any work: the root is
    writable, the prior loads and matches its checksum, K <= T, and N and S fit in memory. A bad file is
    skipped with its reason unless --strict; the exit code is 0 when every file is imaged (or reused),
    EXIT_SKIPPED when any was skipped."""
    import torch

    from configs.image import ImageConfig
    from flows.cli_options import given_options
    from imager.file import check_memory
    from stores.checkpoints import load_prior
    from stores.storage import check_writable

    _some_input_exists(args.files)
    cfg = ImageConfig.of(**given_options(args, ImageConfig))  # the defaults are ImageConfig's, defined once
    configure_local_environment()
    keep_freed_memory()  # the file mode images in this process
    check_writable(args.root)
    prior = load_prior(cfg.prior, torch.device("cpu"))
    prior.meta.check(cfg.prior, max_K=cfg.sampler.K)
    check_memory(cfg, prior)
    if args.ray_address or args.actors:
        return _image_flow(args, cfg)
    return _image_files(args, cfg, prior)


def _some_input_exists(files: list[str]) -> None:
    """ValueError (exit 2, one line) when no local input exists: a mistyped path, not a batch with skips.
    Globs and remote URLs are expanded and checked by the run itself."""
    local = [f for f in files if "://" not in f and not any(ch in f for ch in "*?[")]
    if local and len(local) == len(files) and not any(os.path.lexists(f) for f in local):
        raise ValueError(f"no such input: {', '.join(local[:3])}{' ...' if len(local) > 3 else ''}")


def _image_files(args: argparse.Namespace, cfg, prior) -> int:
    import json

    from imager.file import image_or_skip, raise_fatal, run_key, run_settings, write_run_record

    from imager.product import Skipped
    from stores.jsonio import dumps

    results, failures = [], []
    for path in args.files:
        outcome = image_or_skip(path, cfg, args.root, prior=prior, command=_command_line(args), show_progress=True)
        if isinstance(outcome, Skipped):
            raise_fatal(outcome)
            if cfg.strict:
                raise ValueError(outcome.error)
            failures.append(outcome)
            print(f"skipped {outcome.error}", file=sys.stderr)
            continue
        results.append(outcome)
        print(dumps(outcome.line()))
    key = run_key(cfg, prior)
    record = write_run_record(args.root, key, run_settings(cfg, prior), results, failures)
    print(json.dumps({"run": record, "imaged": sum(not r.reused for r in results),
                      "reused": sum(r.reused for r in results), "skipped": [f.record() for f in failures]}))
    return EXIT_SKIPPED if failures else 0


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed (``main`` keeps its argv), quoted for a shell."""
    import shlex

    return " ".join(shlex.quote(a) for a in ["radio-ddrm", *getattr(args, "argv", sys.argv[1:])])


def _image_flow(args: argparse.Namespace, cfg) -> int:
    import json

    from flows.image import image_observations

    preflight(args, ray=True)
    out = image_observations(args.files, cfg, root=args.root, ray_address=args.ray_address, num_actors=args.actors,
                             command=_command_line(args))
    for row in out["rows"]:
        print(json.dumps(row))
    print(json.dumps({"run": out["run"], "imaged": out["imaged_now"], "reused": out["images"] - out["imaged_now"],
                      "skipped": out["skipped_files"]}))
    return EXIT_SKIPPED if out["skipped"] else 0


def export_prior_command(args: argparse.Namespace) -> int:
    """Ship a trained checkpoint into the package (EMA weights, float16, with card and checksum)."""
    import json
    import re
    from importlib import resources

    from reporting.plots import loss_curve_png
    from stores import packaged, storage
    from stores.checkpoints import read_meta, read_state
    from tasks.train import prior_samples_png, read_history

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", args.name):
        raise ValueError(f"--name must be a plain name (letters, digits, '-' and '_'), got {args.name!r}")
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
