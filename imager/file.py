"""Imaging real observations: a visibility file in, FITS (posterior mean and std, dirty, CLEAN), a PNG
panel and a JSON summary out, never beside the input:

    <root>/images/<run key>/<file name>-<hash of its URL>/{image.fits, panel.png, summary.json}
    <root>/images/<run key>/run.json     the settings, and the files imaged, reused and skipped

The run key (``image-<hash>``) is a hash of the image config's JSON (``ImageConfig.to_dict``: every setting,
``strict`` aside, which changes no product), the algorithm's version ``ddrm.radio.imaging.IMAGING_ALGORITHM``
and the SHA256 of the prior's weights, so other settings write to another folder and never overwrite or reuse
these. Each file's
folder carries its full name and a hash of its URL, so ``a.b.uvfits`` and ``a.c.uvfits``, or ``d1/obs.uvfits``
and ``d2/obs.uvfits``, never share one. A result is reused only when its summary (the ``ImagingProduct``,
``imager.product``, in this schema) names this run key and the SHA256 of the same input bytes and every
product it lists is there with its recorded SHA256 (``stores.products``); otherwise the folder's old result is removed before anything new is written, and the
input is imaged again in place. Products are rendered first and written whole, summary.json last: a folder
holds a whole result or none. The random seed comes from ``seed`` and the SHA256 of the input's bytes, so the
same bytes under two names give the same images.

``image_or_skip`` is the one per-file rule of both modes (in this process, or on Ray actors): any failure of
a file becomes a named skip (``Skipped``); what is not the file's fault (outputs that cannot be
written, a pixel scale the data cannot support, an interrupt) stops the run.

``image_file`` is the whole path for one file; the ``image_observations`` flow fans it out.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Optional, Union

import torch

from configs import stable_hash
from configs.image import ImageConfig, ImagingSettingsError
from ddrm.radio.crossval import holdout_mask
from ddrm.radio.gains import solution_intervals
from ddrm.radio.imaging import IMAGING_ALGORITHM
from ddrm.seeding import derive_seed
from imager.assemble import Run, assemble
from imager.product import SCHEMA_VERSION, SUMMARY_DIGITS, DataTerm, ImagingProduct, Outcome, Skipped
from imager.scale import FieldImage, gain_evidence, image_at_best_scale
from imager.terms import data_term, imager
from reporting.image_products import product_name
from reporting.progress import StageBar
from sources.fits_bounds import available_memory
from sources.measurement_set import read_visibilities
from sources.uvfits import VisibilityFile, VisibilityFileError
from stores import products, storage
from stores.checkpoints import Prior, load_prior
from stores.inputs import local_copy
from stores.jsonio import dumps, rounded
from stores.products import SUMMARY, ProductWriteError  # noqa: F401 (SUMMARY: the pool reads it from here)
from stores.storage import StorageOptions

RUN = "run.json"
EXACT_KEYS = frozenset({"ra_deg", "dec_deg", "pixel_scale_arcsec", "ref_freq_hz"})  # kept to every digit
BYTES_PER_PIXEL_CHANNEL = 100  # the denoiser's peak memory per sample, pixel and U-Net base channel (measured:
#                                1.0-1.7 kB per sample-pixel at base 16, N 128-256, S 4-16, no_grad on CPU)


def run_key(cfg: ImageConfig, prior: Prior) -> str:
    """``image-<hash>`` of every setting that changes the products, the prior's weights included."""
    return f"image-{stable_hash(run_settings(cfg, prior), 10)}"


def run_settings(cfg: ImageConfig, prior: Prior) -> dict[str, Any]:
    """The config's JSON (``ImageConfig.to_dict``, less ``strict``, which changes no product), the algorithm's
    version and the prior's SHA256."""
    settings = {k: v for k, v in cfg.to_dict().items() if k != "strict"}
    return {**settings, "algorithm": IMAGING_ALGORITHM, "prior_sha256": prior.sha256}


def file_label(path: str) -> str:
    """A file's folder name: its full name and a hash of its URL (distinct for distinct inputs, stable)."""
    name = os.path.basename(path.rstrip("/")) or "observation"
    return f"{name}-{stable_hash(storage.normalise_url(path), 8)}"


def output_dir(root: str, key: str, path: str) -> str:
    return storage.join(storage.normalise_url(root), "images", key, file_label(path))


def finished(root: str, key: str, path: str, input_sha256: str,
             storage_options: StorageOptions = None) -> Optional[ImagingProduct]:
    """The product of a finished result of this run key for exactly these input bytes, in this summary schema,
    every product it lists present with its recorded SHA256 (``stores.products.verified``), else None."""
    out = output_dir(root, key, path)
    summary = products.read_summary(out, storage_options)
    if not summary or summary.get("schema_version") != SCHEMA_VERSION:
        return None
    try:
        product = ImagingProduct.from_dict(summary)
    except (TypeError, ValueError):  # a summary edited or cut short: image again
        return None
    if product.provenance.run_key == key and product.observation.input_sha256 == input_sha256 \
            and products.verified(summary, out, storage_options):
        return product
    return None


def check_memory(cfg: ImageConfig, prior: Prior) -> None:
    """ValueError before any work if S samples of N² pixels need more memory than this machine has free."""
    need = BYTES_PER_PIXEL_CHANNEL * prior.meta.unet.base_channels * cfg.sampler.samples * cfg.N ** 2 if prior.meta.unet \
        else 0
    free = available_memory()
    if free and need > free:
        raise ValueError(f"--N {cfg.N} with --samples {cfg.sampler.samples} needs about {need / 2**30:.1f} GiB for the "
                         f"denoiser; {free / 2**30:.1f} GiB is available. Use a smaller --N or fewer --samples.")


def image_file(path: str, cfg: ImageConfig, root: str = "runs", storage_options: StorageOptions = None,
               prior: Optional[Prior] = None, source: Optional[str] = None, command: str = "",
               show_progress: bool = False) -> Outcome:
    """Image one local file (``source``: its original URL, default ``path``) into its folder of the run
    (``output_dir``), summary.json last; a finished identical result is returned as it is (``reused``).
    Errors about the file are VisibilityFileError naming it. ``command``: the command line, recorded in the
    FITS products' HISTORY; ``show_progress``: a bar on stderr (``reporting.progress``)."""
    t0 = time.perf_counter()
    source = source or path
    prior = prior or load_prior(cfg.prior, torch.device("cpu"))
    key, sha = run_key(cfg, prior), input_checksum(path)
    out = output_dir(root, key, source)
    done = finished(root, key, source, sha, storage_options)
    if done is not None:
        return Outcome(done, reused=True)
    _clear(out, source, storage_options)  # a stale result (other bytes, a lost product) goes before anything new
    vis, held = read_held_out(path, cfg)
    run = Run(source, sha, out, key, cfg, prior, command, derive_seed(cfg.seed, "image", sha))
    bar = StageBar(product_name(source), show_progress)
    try:  # the bar is closed however the imaging ends (an error, Ctrl-C), so a message starts its own line
        term, found = image_field(path, vis, run, bar)
        searched = len(found.candidates or ())
        bar.stage(searched + 1, searched + 2, "quality figures and products")
        product, rendered = assemble(run, vis, held, found, term, t0)
        written = products.commit(out, rendered, summary_json(product), source, storage_options)
        return Outcome(ImagingProduct.from_dict(written))  # as written: a reuse reads the same
    finally:
        bar.close()


def read_held_out(path: str, cfg: ImageConfig) -> tuple[VisibilityFile, Optional[VisibilityFile]]:
    """(the samples imaged, the held-out ones or None) of a file, with the gains' solution intervals numbered
    over all of them (the held-out share them)."""
    vis = read_visibilities(path)
    vis = vis.with_intervals(solution_intervals(vis.time_jd, cfg.selfcal.solint))
    if not cfg.holdout > 0:
        return vis, None
    try:
        mask = holdout_mask(vis.antenna1, vis.antenna2, vis.time_jd, cfg.holdout, cfg.seed)
    except ValueError as err:
        raise VisibilityFileError(f"{os.path.basename(path.rstrip('/'))}: {err}") from None
    return vis.subset(~mask), vis.subset(mask)


def image_field(path: str, vis: VisibilityFile, run: Run, bar: StageBar) -> tuple[DataTerm, FieldImage]:
    """The data term, then the field searched and imaged (``imager.terms``, ``imager.scale``); a ValueError of
    the data (no baseline to fit a pixel scale to, no positive CLEAN flux) becomes the file's error."""
    try:
        term = data_term(vis, run.cfg)
        candidate, final = imager(vis, run.cfg, run.prior, run.seed, term.data_term,
                                  lambda im, s: gain_evidence(vis, im, s))
        return term, image_at_best_scale(vis, run.cfg, term.data_term, candidate, final, bar.stage)
    except ImagingSettingsError:
        raise
    except ValueError as err:
        raise VisibilityFileError(f"{os.path.basename(path.rstrip('/'))}: {err}") from None


def summary_json(product: ImagingProduct) -> dict[str, Any]:
    """summary.json's content: the product's dict, its numbers to ``SUMMARY_DIGITS`` (``EXACT_KEYS`` exact)."""
    return rounded(product.to_dict(), SUMMARY_DIGITS, EXACT_KEYS)


def _clear(out: str, source: str, storage_options: StorageOptions) -> None:
    try:
        products.clear(out, storage_options)
    except OSError as err:
        raise ProductWriteError(f"{source}: cannot clear its earlier products under {out} "
                                f"({type(err).__name__}: {err.strerror or err})") from None


def image_or_skip(path: str, cfg: ImageConfig, root: str, storage_options: StorageOptions = None,
                  prior: Optional[Prior] = None, command: str = "",
                  show_progress: bool = False) -> Union[Outcome, Skipped]:
    """The outcome of ``path`` (local or remote: copied here first), or a ``Skipped`` naming it for any failure
    of the file, with ``fatal`` "output" or "settings" for a failure of the run (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = local_copy(path, storage_options, tmp)
            return image_file(local, cfg, root, storage_options, prior, source=path, command=command,
                              show_progress=show_progress)
        except ProductWriteError as err:
            return Skipped(path, str(err), fatal="output")
        except ImagingSettingsError as err:
            return Skipped(path, str(err), fatal="settings")
        except Exception as err:  # noqa: BLE001: one file's failure of any kind is that file's skip
            return Skipped(path, describe_failure(path, err))


def raise_fatal(result: Union[Outcome, Skipped]) -> None:
    """Raise a run's failure that ``image_or_skip`` reported (``fatal``): OSError for outputs that cannot be
    written, ValueError for settings the data cannot support; nothing for a file's skip or an outcome."""
    if isinstance(result, Skipped) and result.fatal:
        raise (OSError if result.fatal == "output" else ValueError)(result.error)


def describe_failure(path: str, err: Exception) -> str:
    """One line naming the file: the error's own message where it names the file, else 'name: Type: message'."""
    name = os.path.basename(path.rstrip("/")) or path
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, VisibilityFileError) or name in text:
        return text[:500]
    kind = "" if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: "
    return f"{name}: {kind}{text}"[:500]


def input_checksum(path: str, storage_options: StorageOptions = None) -> str:
    """SHA256 of an input's bytes (a Measurement Set: of its files); refuses pipes and devices first."""
    if not storage.is_remote(path):
        from sources.uvfits import check_input

        check_input(path)
    return storage.checksum(path, storage_options)


def write_run_record(root: str, key: str, settings: dict, results: list[Outcome], failures: list[Skipped],
                     storage_options: StorageOptions = None) -> str:
    """``run.json`` of a run: its settings, the files imaged now, reused and skipped (with the reason)."""
    url = storage.join(storage.normalise_url(root), "images", key, RUN)
    record = {"run_key": key, "settings": settings,
              "imaged": [r.file for r in results if not r.reused],
              "reused": [r.file for r in results if r.reused],
              "skipped": [{"file": f.file, "error": f.error} for f in failures]}
    storage.write_bytes(url, dumps(record, indent=2).encode(), storage_options)
    return url
