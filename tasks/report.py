"""Survey tables and figures: per (array, K) mean ± std and count, DDRM beside dirty and CLEAN.

Writes ``<survey>.report/`` (beside the store): ``metrics.csv``, ``table.md``, ``gallery.png``,
``psnr_vs_K.png`` and, on request, ``fits/<obs id>_{mean,std,dirty,clean}.fits`` with WCS.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Optional

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs import ReconstructConfig
from ddrm.radio import array_pixel_scale, array_spec
from reporting.artifacts import artifact_key, png_markdown
from reporting.calibration import calibrate, calibration_markdown, reliability_figure
from reporting.plots import gallery_png, psnr_vs_K_png
from stores import storage
from stores import survey as ss
from stores.dataset import Dataset
from stores.fits_io import fits_bytes
from stores.integrity import StoreDamagedError, verify
from stores.runs import report_dir
from stores.storage import StorageOptions

TABLE_METRICS = ("mse", "psnr", "psnr_mean", "snr", "sre", "cov68", "cov95", "cov68_src", "cov95_src", "nfe", "t_sampling")
LABELS = {"clean": "CLEAN", "dirty": "dirty", "multiscale": "MS-CLEAN"}


def methods(meta: dict) -> dict[str, str]:
    """{table label: column prefix} of the samplers that ran (from the store), then the baselines."""
    names = list(meta["samplers"]) + list(meta["baselines"])
    return {LABELS.get(n, n.upper()): f"{n}_" for n in names}


def summary_rows(results: ss.SurveyResults) -> list[dict[str, Any]]:
    """One row per (array, σ_y, K, method) over finished test observations: n, and mean/std of TABLE_METRICS
    (NaN where a method has no such metric, e.g. SRE of CLEAN)."""
    col = {c: i for i, c in enumerate(results.meta["columns"])}
    rows = []
    for cell in results.cells():
        sel = np.zeros(len(results.done), dtype=bool)
        sel[cell.test] = True  # test images only
        rows += _method_rows(results.metrics, col, sel, {"array": cell.array, "sigma_y": cell.sigma_y, "K": cell.K},
                             results.meta)
    return rows


def _method_rows(m: np.ndarray, col: dict, sel: np.ndarray, head: dict, meta: dict) -> list[dict[str, Any]]:
    rows = []
    for method, prefix in methods(meta).items():
        row: dict[str, Any] = {**head, "method": method, "n": int(sel.sum())}
        for metric in TABLE_METRICS:
            values = m[sel, col[prefix + metric]] if prefix + metric in col else np.full(sel.sum(), np.nan)
            ok = values[np.isfinite(values)]
            row[f"{metric}_mean"] = float(ok.mean()) if len(ok) else float("nan")
            row[f"{metric}_std"] = float(ok.std(ddof=1)) if len(ok) > 1 else float("nan")
        rows.append(row)
    return rows


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _pm(row: dict, metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if not np.isfinite(mean):
        return "–"
    fmt = ".3g" if metric in ("mse", "t_sampling") else ".2f" if metric in ("psnr", "psnr_mean", "snr") else \
        ".0f" if metric == "nfe" else ".3f"
    return f"{mean:{fmt}} ± {std:{fmt}}" if np.isfinite(std) else f"{mean:{fmt}}"


def rows_to_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| array | σ_y | K | method | n | " + " | ".join(TABLE_METRICS) + " |"
    lines = [head, "|---" * (5 + len(TABLE_METRICS)) + "|"]
    for r in rows:
        lines.append(f"| {r['array']} | {r['sigma_y']:g} | {r['K']} | {r['method']} | {r['n']} | " +
                     " | ".join(_pm(r, m) for m in TABLE_METRICS) + " |")
    return "\n".join(lines)


def _gallery(survey: str, results: ss.SurveyResults, dataset: Dataset, per_array: int,
             storage_options: StorageOptions) -> bytes:
    """Truth / dirty / CLEAN / DDRM mean / posterior std / residual for a few observations per array at
    the largest K and the first noise level."""
    group = storage.open_group(survey, "r", storage_options)
    meta, K = results.meta, max(results.meta["K_values"])
    first = meta["samplers"][0]
    panels, labels = [], []
    for cell in results.cells():
        if cell.K != K or cell.s != 0:
            continue
        for i in cell.test[:per_array]:
            truth = dataset.read([int(results.obs_image[i])])[0]
            mean, dirty, clean, std = (_image(group, survey, name, i) for name in
                                       (f"{first}_mean", "dirty", "clean", f"{first}_std"))
            panels.append([truth, dirty, clean, mean, std, mean - truth])
            labels.append(f"{cell.array} σ={cell.sigma_y:g} K={K} #{int(results.obs_image[i])}")
    return gallery_png(panels, labels, ["truth", "dirty", "CLEAN", f"{first.upper()} mean", "posterior std",
                                        "residual"])


def _image(group, survey: str, name: str, i: int) -> np.ndarray:
    """Observation i of image array ``name``; StoreDamagedError naming the store if its chunk is damaged."""
    try:
        return group[name][i]
    except Exception as err:  # noqa: BLE001 - zstd/shape errors of a damaged chunk
        raise StoreDamagedError(f"survey store {survey} is damaged: observation {i} of {name!r} cannot be decoded "
                                f"({type(err).__name__}); rerun the reconstruction to repair it") from None


def _fits_outputs(survey: str, results: ss.SurveyResults, storage_options: StorageOptions) -> int:
    """FITS per observation and image; each array's own pixel scale (its uv pattern fitted to the grid),
    or a header saying there is none for a mask-only array."""
    group = storage.open_group(survey, "r", storage_options)
    meta, n = results.meta, 0
    scales = {a: array_pixel_scale(a, int(meta["N"])) for a in meta["arrays"]}
    for i in np.flatnonzero(results.done):
        array, K, image = meta["arrays"][results.obs_array[i]], int(results.obs_K[i]), int(results.obs_image[i])
        sigma = float(meta["sigma_y"][results.obs_sigma[i]])
        obs = array_spec(array).observation
        for name in meta["images"]:
            data = fits_bytes(_image(group, survey, name, i), ra_deg=obs and obs.ra_deg, dec_deg=obs and obs.dec_deg,
                              pixel_scale_arcsec=scales[array], bunit="",  # dimensionless: astropy's units
                              # read it; what the numbers are goes in BUNIT's comment
                              bunit_comment="image fraction: peak-normalised flux per pixel",
                              freq_hz=obs and obs.freq_hz,
                              extra={"OBSID": ReconstructConfig.obs_id(array, sigma, K, image), "DDRM_K": K, "PRODUCT": name})
            fname = re.sub(r"[^A-Za-z0-9_.-]+", "_", ReconstructConfig.obs_id(array, sigma, K, image)) + f"_{name}.fits"
            storage.write_bytes(storage.join(report_dir(survey), "fits", fname), data, storage_options)
            n += 1
    return n


@task(cache_policy=NO_CACHE)
def aggregate(survey: str, fits: bool = False, gallery_per_array: int = 2,
              storage_options: StorageOptions = None) -> dict[str, Any]:
    """Tables (CSV, Markdown, Prefect table artifact), figures and optional FITS; returns the paths and rows.
    The store passes the same integrity check as before a resume (``stores.integrity.verify``) first."""
    survey = storage.normalise_url(survey)
    meta = ss.read_meta(survey, storage_options)
    if not meta:
        raise ValueError(f"{survey}: not a readable survey store")
    verify(survey, meta, storage_options)
    results = ss.load_results(survey, storage_options)
    out = report_dir(survey)
    stamp = {"n_done": int(results.done.sum()), "last_finished": float(np.nanmax(results.finished_at, initial=0)),
             "fits": bool(fits), "version": 3}
    raw = storage.read_bytes(storage.join(out, "report.json"), storage_options)
    previous = json.loads(raw) if raw else None
    if previous and previous.get("stamp") == stamp:
        get_run_logger().info("report in %s is up to date; reusing it", out)
        return previous["result"]
    rows = summary_rows(results)
    markdown = rows_to_markdown(rows)
    storage.write_bytes(storage.join(out, "metrics.csv"), rows_to_csv(rows).encode(), storage_options)
    storage.write_bytes(storage.join(out, "table.md"), (markdown + "\n").encode(), storage_options)
    dataset = Dataset(meta["dataset"], storage_options)
    gallery = _gallery(survey, results, dataset, gallery_per_array, storage_options)
    curve = psnr_vs_K_png([r for r in rows if r["sigma_y"] == meta["sigma_y"][0]],
                          [lab for lab, p in methods(meta).items() if p[:-1] in meta["samplers"]])
    storage.write_bytes(storage.join(out, "gallery.png"), gallery, storage_options)
    storage.write_bytes(storage.join(out, "psnr_vs_K.png"), curve, storage_options)
    n_fits = _fits_outputs(survey, results, storage_options) if fits else 0
    cal_rows = calibrate(survey, results, dataset, storage_options)
    cal_markdown = calibration_markdown(cal_rows)
    reliability = reliability_figure(cal_rows)
    storage.write_bytes(storage.join(out, "calibration.json"), json.dumps(cal_rows).encode(), storage_options)
    storage.write_bytes(storage.join(out, "reliability.png"), reliability, storage_options)
    key = artifact_key("survey", meta["config"]["name"])
    create_table_artifact(table=[{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                                 for r in rows], key=key, description=f"survey metrics, {survey}")
    create_markdown_artifact(key=f"{key}-report", description=f"survey report, {survey}", markdown="\n".join([
        f"# Survey `{meta['config']['name']}`", "", f"{int(results.done.sum())} of {meta['n_obs']} observations; "
        f"prior `{meta['checkpoint']}`", "", markdown, "",
        png_markdown(gallery, "gallery"), "",
        png_markdown(curve, "psnr"), "", "## Coverage of source pixels, raw and conformally recalibrated (validation "
        "split fit, test split scored)", "", cal_markdown, "", png_markdown(reliability, "reliability")]))
    get_run_logger().info("report in %s (%d FITS files)", out, n_fits)
    result = {"report": out, "rows": rows, "markdown": markdown, "fits": n_fits, "calibration": cal_rows,
              "missing": int((~results.done).sum())}
    storage.write_bytes(storage.join(out, "report.json"), json.dumps({"stamp": stamp, "result": result}).encode(),
                        storage_options)
    return result



def table_for(rows: list[dict], array: str, K: int, method: str, sigma_y: Optional[float] = None) -> Optional[dict]:
    """The row of (array, K, method) at noise level sigma_y (default: the survey's first)."""
    return next((r for r in rows if (r["array"], r["K"], r["method"]) == (array, K, method)
                 and (sigma_y is None or r["sigma_y"] == sigma_y)), None)
