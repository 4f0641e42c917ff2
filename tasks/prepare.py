"""Prefect tasks of dataset preparation: plan, scan, write shards, validate, publish, summarise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from configs import PrepareConfig
from ddrm.diffusion.galaxies import MORPHOLOGIES, synth_galaxies
from ddrm.seeding import derive_seed
from reporting.artifacts import artifact_key, png_markdown
from reporting.plots import image_grid_png
from sources.ingest import (Item, describe_error, files_hash, list_items, load_item, load_normalised, source_provenance,
                            source_splits)
from stores import dataset as ds
from stores import storage
from stores.storage import StorageOptions

MAX_SKIPPED_RECORDED = 1000


@dataclass(frozen=True)
class Plan:
    """Where the store goes and whether it already exists; for real images, the usable items."""

    final: str
    partial: str
    key: str
    reused: bool
    items: tuple[Item, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    files_hash: Optional[str] = None


@dataclass(frozen=True)
class Scan:
    good: tuple[Item, ...] = ()
    peaks: tuple[float, ...] = ()
    bad: tuple[tuple[str, str], ...] = field(default=())


@task(cache_policy=NO_CACHE)
def plan_store(config: PrepareConfig, root: str, storage_options: StorageOptions = None) -> Plan:
    """Check the storage is reachable, list real images, and decide whether the store exists already."""
    storage.check_reachable(root, storage_options)
    items, bad, fhash = (), (), None
    if not config.synthetic:
        found, bad_files = list_items(config.source, config.array_key)
        items, bad, fhash = tuple(found), tuple(bad_files), files_hash(found)
    key = ds.store_key(config, fhash)
    final, partial = ds.store_urls(root, config, key)
    reused = ds.is_complete(final, key, storage_options)
    get_run_logger().info("dataset %s: %s", final, "complete, reusing it" if reused else "to be written")
    return Plan(final, partial, key, reused, items, bad, fhash)


@task(cache_policy=NO_CACHE)
def scan_items(items: list[Item], config: PrepareConfig) -> Scan:
    """Load and check a batch of real images; the peaks (after fitting to N) set a global scale."""
    good, peaks, bad = [], [], []
    for item in items:
        try:
            loaded = load_item(item, config)
        except (ValueError, OSError) as err:
            bad.append(describe_error(item, err))
            continue
        good.append(item)
        peaks.append(float(loaded.image.max()))
    return Scan(tuple(good), tuple(peaks), tuple(bad))


def shard_ids(n: int, config: PrepareConfig) -> list[int]:
    return list(range(-(-n // config.shard_size)))


def chunked(seq, size: int) -> list[list]:
    seq = list(seq)
    return [seq[i:i + size] for i in range(0, len(seq), size)]


@task(cache_policy=NO_CACHE)
def collect_scans(plan: Plan, config: PrepareConfig, scans: list[Scan]) -> tuple[list[Item], Optional[float], dict]:
    """(usable items in source order, capped at n_images; the global scale or None; provenance).
    Bad inputs are logged by name and skipped, or fail the run in strict mode."""
    logger = get_run_logger()
    good = [item for s in scans for item in s.good][:config.n_images]
    peaks = [p for s in scans for p in s.peaks][:len(good)]
    skipped = list(plan.skipped) + [b for s in scans for b in s.bad]
    for name, reason in skipped:
        logger.warning("skipping %s: %s", name, reason)
    logger.info("%d usable images, %d skipped", len(good), len(skipped))
    if skipped and config.strict:
        raise ValueError(f"{len(skipped)} bad input(s) in strict mode: " +
                         "; ".join(f"{name}: {reason}" for name, reason in skipped[:20]))
    if not good:
        raise ValueError(f"{config.source}: no usable images ({len(skipped)} skipped)")
    provenance = {**source_provenance(config.source), "files_hash": plan.files_hash,
                  "n_files": len({i.path for i in plan.items}), "n_skipped": len(skipped),
                  "skipped": [list(s) for s in skipped[:MAX_SKIPPED_RECORDED]]}
    splits = source_splits(good)
    if splits is not None:
        provenance["splits"] = splits
    return good, (max(peaks) if config.normalisation == "global" else None), provenance


@task(cache_policy=NO_CACHE)
def create_store(plan: Plan, config: PrepareConfig, n: int, meta: dict,
                 storage_options: StorageOptions = None) -> int:
    """Create the partial store (or keep it to resume); returns how many shards are already written."""
    done = ds.create_partial(plan.partial, n=n, config=config, meta={**meta, "config_hash": plan.key},
                             storage_options=storage_options)
    if done:
        get_run_logger().info("resuming %s: %d shards already written", plan.partial, done)
    return done


def _already_done(url: str, shard: int, storage_options: StorageOptions) -> bool:
    return shard in ds.done_shards(url, storage_options)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def write_synthetic_shard(url: str, config: PrepareConfig, n: int, shard: int,
                          storage_options: StorageOptions = None) -> int:
    """Generate and write images [shard·size, min(n, (shard+1)·size)); returns the count (0 if done)."""
    if _already_done(url, shard, storage_options):
        return 0
    start = shard * config.shard_size
    m = min(config.shard_size, n - start)
    gal = synth_galaxies(m, config.N, config.galaxy, torch.Generator().manual_seed(derive_seed(config.seed, shard)))
    ds.write_shard(url, shard, start, gal.images.numpy(), gal.labels.numpy().astype(np.int16), storage_options)
    get_run_logger().info("shard %d: %d synthetic images written", shard, m)
    return m


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def write_ingest_shard(url: str, config: PrepareConfig, items: list[Item], shard: int,
                       global_scale: Optional[float], storage_options: StorageOptions = None) -> int:
    """Normalise and write the shard's real images; returns the count (0 if done)."""
    if _already_done(url, shard, storage_options):
        return 0
    pairs = [load_normalised(item, config, global_scale) for item in items]
    images = torch.stack([p[0] for p in pairs]).numpy().astype(np.float32)
    labels = np.array([p[1] for p in pairs], dtype=np.int16)
    ds.write_shard(url, shard, shard * config.shard_size, images, labels, storage_options)
    get_run_logger().info("shard %d: %d images written", shard, len(items))
    return len(items)


@task(cache_policy=NO_CACHE)
def validate_store(url: str, storage_options: StorageOptions = None) -> dict:
    stats = ds.validate(url, storage_options)
    get_run_logger().info("validated %s: %d images, splits %s", url, stats["n"], stats["splits"])
    return stats


@task(cache_policy=NO_CACHE, retries=1)
def publish_store(plan: Plan, storage_options: StorageOptions = None) -> str:
    ds.publish(plan.partial, plan.final, storage_options)
    get_run_logger().info("published %s", plan.final)
    return plan.final


def summary_markdown(url: str, meta: dict, stats: dict, png: bytes) -> str:
    prov = meta.get("provenance", {})
    names = dict(enumerate(MORPHOLOGIES)) if prov.get("source") == "synthetic" else {}
    labels = ", ".join(f"{names.get(int(k), k)}: {v}" for k, v in stats["labels"].items())
    lines = [
        f"# Dataset `{meta['config']['name']}`", "", f"Store: `{url}`", "",
        "| property | value |", "|---|---|",
        f"| images | {stats['n']} of {meta['N']}×{meta['N']} px, float32 in [0, 1] |",
        f"| splits | {', '.join(f'{k} {v}' for k, v in stats['splits'].items())} |",
        f"| labels | {labels} |",
        f"| source | {prov.get('source')} |",
        f"| normalisation | {meta['normalisation']} |",
        f"| pixel scale | {meta.get('pixel_scale_arcsec')} arcsec |",
        f"| skipped inputs | {prov.get('n_skipped', 0)} |",
        f"| mean pixel / non-zero fraction | {stats['mean_pixel']:.4f} / {stats['nonzero_fraction']:.3f} |",
        f"| config hash / version | {meta['config_hash']} / {meta['package_version']} |", "",
        png_markdown(png, "examples"),
    ]
    return "\n".join(lines)


@task(cache_policy=NO_CACHE)
def summarise_store(url: str, stats: dict, storage_options: StorageOptions = None, n_examples: int = 16) -> str:
    """Write ``<store>.preview.png`` and a Prefect markdown artifact; returns the artifact's markdown."""
    dataset = ds.Dataset(url, storage_options)
    idx = np.linspace(0, len(dataset) - 1, min(n_examples, len(dataset))).round().astype(int)
    labels = dataset.labels(idx)
    synthetic = dataset.meta["provenance"].get("source") == "synthetic"
    titles = [f"#{i} {MORPHOLOGIES[lab] if synthetic and lab >= 0 else ''}" for i, lab in zip(idx, labels)]
    png = image_grid_png(dataset.read(idx), titles)
    storage.write_bytes(url.removesuffix(".zarr") + ".preview.png", png, storage_options)
    markdown = summary_markdown(url, dataset.meta, stats, png)
    key = artifact_key("dataset", dataset.meta["config"]["name"])
    create_markdown_artifact(markdown=markdown, key=key, description=f"dataset store {url}")
    return markdown
