"""Calibrated visibilities from uvfits (random-groups FITS, as AIPS, difmap, CASA's exportuvfits,
the EHT pipelines and pyuvdata write them), read with astropy.

The data array has shape (n_rows, [DEC, RA,] [IF,] FREQ, STOKES, 3), last axis (re, im, weight);
its axes are found from the header's CTYPEn, not assumed. Per row, IF and channel:

    ν = CRVAL_FREQ + (c + 1 - CRPIX_FREQ) CDELT_FREQ + IF_FREQ[if]       (AIPS FQ table, 0 if none)
    (u, v) [wavelengths] = (UU, VV) [seconds] · ν

Stokes I: a single I product, or (RR + LL)/2 (or (XX + YY)/2) with weight 4/(1/w₁ + 1/w₂); where only
one hand is valid it stands for I with its own weight, and where RR and LL are identical copies of
one I estimate (as in the EHT files) the weight is not doubled. A visibility whose weight is <= 0 or not
finite, or whose value is not finite, is flagged: dropped and counted. So is one whose u, v or w is not
finite or absurd (|UU|, |VV| or |WW| over ``MAX_BASELINE_S`` light-seconds, ten times the longest space-VLBI
baseline), or whose frequency is not positive (``n_bad_coordinates`` counts these): nothing unphysical is
gridded. Without an AIPS FQ table a single IF is taken at offset 0 and a warning recorded; several IFs
without one, or an FQ table shorter than the data's IFs, are an error. Autocorrelations are dropped,
and rows with unlisted antennas, non-finite times or unphysical weights flagged, all counted
(``sources.uvfits_rows``); a compressed file is bounded before it is decompressed (``sources.fits_bounds``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ddrm.radio.visibilities import Visibilities

from .fits_bounds import available_memory, check_compressed
from .uvfits_rows import RowCheck, absurd_weights, check_rows, header_date, header_position

STOKES_CODES = {1: "I", 2: "Q", 3: "U", 4: "V", -1: "RR", -2: "LL", -3: "RL", -4: "LR", -5: "XX", -6: "YY",
                -7: "XY", -8: "YX"}
PARALLEL_HANDS = (("RR", "LL"), ("XX", "YY"))
MAX_BASELINE_S = 10.0  # light-seconds (3e6 km); RadioAstron's longest was about 1.2


class VisibilityFileError(ValueError):
    """A visibility file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, eq=False, kw_only=True)
class VisibilityFile(Visibilities):
    """A file's unflagged Stokes I visibilities (``ddrm.radio.visibilities.Visibilities``: uv, vis, weight,
    antennas, time, frequency and the antenna table), with what was read about the observation and the flag
    counts."""

    path: str
    ra_deg: float
    dec_deg: float
    date_obs: str
    telescope: str
    source: str
    n_read: int
    n_flagged: int
    stokes_from: str
    n_bad_coordinates: int = 0
    warnings: tuple[str, ...] = ()
    n_autocorrelations: int = 0  # dropped (counted in n_flagged too): antenna 1 = antenna 2
    n_bad_antennas: int = 0  # flagged: antennas not in the AN table (or out of bounds), BASELINE not finite
    n_bad_times: int = 0  # flagged: time not finite
    n_bad_weights: int = 0  # flagged: weight over 1e18 or 1e8 x the median (sources.uvfits_rows)
    bandwidth_hz: float = 0.0  # IFs x channels x |channel width| (0: unknown)


def _fail(path: str, reason: str) -> VisibilityFileError:
    return VisibilityFileError(f"{os.path.basename(path)}: {reason}")


def _axes(header: fits.Header) -> dict[str, int]:
    """CTYPE name -> numpy axis index of the groups' data array (axis 0 is the row)."""
    naxis = int(header["NAXIS"])
    names = [str(header.get(f"CTYPE{i}", "")).strip().upper() for i in range(2, naxis + 1)]  # FITS order
    return {name: len(names) - k for k, name in enumerate(names)}  # numpy order is reversed, after the row


def _axis_values(header: fits.Header, i_fits: int, n: int) -> np.ndarray:
    return header.get(f"CRVAL{i_fits}", 0.0) + (np.arange(n) + 1 - header.get(f"CRPIX{i_fits}", 1.0)) * \
        header.get(f"CDELT{i_fits}", 1.0)


def _param(data, *prefixes: str) -> np.ndarray:
    for name in data.parnames:
        if name.upper().startswith(prefixes):
            return np.asarray(data.par(name), dtype=np.float64)
    raise KeyError(prefixes[0])


def _stokes_i(cube: np.ndarray, codes: list[str], path: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(vis, weight) of Stokes I from the last-but-one axis (STOKES) of cube (..., STOKES, 3)."""
    def hand(name: str) -> tuple[np.ndarray, np.ndarray]:
        c = cube[..., codes.index(name), :]
        vis, w = c[..., 0] + 1j * c[..., 1], c[..., 2]
        ok = np.isfinite(w) & (w > 0) & np.isfinite(vis)
        return np.where(ok, vis, 0), np.where(ok, w, 0.0)

    if "I" in codes:
        vis, w = hand("I")
        return vis, w, "I"
    for a, b in PARALLEL_HANDS:
        if a in codes or b in codes:
            (va, wa), (vb, wb) = (hand(a) if a in codes else (0, np.zeros(cube.shape[:-2]))), \
                (hand(b) if b in codes else (0, np.zeros(cube.shape[:-2])))
            both = (wa > 0) & (wb > 0)
            copies = both & (va == vb) & (wa == wb)  # RR = LL = one Stokes I estimate (EHT files): not independent
            with np.errstate(divide="ignore", invalid="ignore"):
                w = np.where(both, 4 / (1 / np.where(wa > 0, wa, 1) + 1 / np.where(wb > 0, wb, 1)), wa + wb)
            w = np.where(copies, wa, w)
            vis = np.where(both, (va + vb) / 2, np.where(wa > 0, va, vb))
            return vis, w, f"({a}+{b})/2" if a in codes and b in codes else (a if a in codes else b)
    raise _fail(path, f"no usable Stokes I: products {codes} hold neither I nor RR/LL nor XX/YY")


def check_input(path: str) -> None:
    """FileNotFoundError, or VisibilityFileError unless ``path`` is a regular file or a folder (a FIFO or a
    device such as /dev/zero would block or never end)."""
    import stat

    mode = os.stat(path).st_mode  # FileNotFoundError for a missing path
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _fail(path, "not a regular file (a pipe, socket or device cannot be read as visibilities)")


def read_uvfits(path: str) -> VisibilityFile:
    """Read a uvfits file; VisibilityFileError (a ValueError naming the file) if it is unusable."""
    check_input(path)
    _check_size(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False) as hdul:
                primary = hdul[0]
                if not isinstance(primary, fits.GroupsHDU):
                    raise _fail(path, "not a random-groups (uvfits) file")
                header, data = primary.header.copy(), primary.data
                cube = np.asarray(data.data, dtype=np.float64)
                uu, vv = _param(data, "UU"), _param(data, "VV")
                try:
                    ww = _param(data, "WW")
                except KeyError:
                    ww = np.zeros_like(uu)
                baseline = _optional(data, "BASELINE")
                time_jd = np.asarray(data.par("DATE"), np.float64) if "DATE" in [p.upper() for p in data.parnames] \
                    else np.zeros(len(uu))  # astropy sums the two DATE parameters (day and fraction)
                if_freq = np.atleast_1d(np.asarray(hdul["AIPS FQ"].data["IF FREQ"][0], dtype=np.float64)) \
                    if "AIPS FQ" in hdul else None
                tables = [h for h in hdul if h.name == "AIPS AN" and "NOSTA" in h.columns.names]
                stations = np.concatenate([np.asarray(h.data["NOSTA"], np.int64) for h in tables]) if tables else None
                antennas = _antenna_table(tables)
    except VisibilityFileError:
        raise
    except FileNotFoundError:
        raise
    except KeyError as err:
        raise _fail(path, f"no {err.args[0]} random parameter (not a visibility file?)") from None
    except Exception as err:  # astropy: OSError, TypeError, ValueError... for truncated or corrupt files
        raise _fail(path, f"unreadable or truncated FITS ({type(err).__name__}: {err})") from None
    return _assemble(path, header, cube, uu, vv, ww, if_freq, check_rows(baseline, time_jd, stations), time_jd,
                     antennas)


def _antenna_table(tables) -> tuple[tuple[int, str], ...]:
    """(NOSTA, ANNAME) of the AIPS AN tables' rows (names empty where the table has no ANNAME)."""
    out = []
    for h in tables:
        names = h.data["ANNAME"] if "ANNAME" in h.columns.names else [""] * len(h.data)
        out += [(int(n), str(a).strip()) for n, a in zip(h.data["NOSTA"], names)]
    return tuple(out)


def _check_size(path: str) -> None:
    """A compressed file's declared and decompressed sizes bounded (``fits_bounds``) before astropy reads it."""
    try:
        check_compressed(path, available_memory())
    except ValueError as err:
        raise _fail(path, str(err)) from None
    except Exception as err:  # gzip and bz2: BadGzipFile (OSError), EOFError, zlib.error for damaged streams
        raise _fail(path, f"unreadable compressed file ({type(err).__name__}: {err})") from None


def _optional(data, name: str):
    try:
        return _param(data, name)
    except KeyError:
        return None


def _if_offsets(path: str, if_freq, n_if: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """(IF frequency offsets (n_if,), warnings) from the AIPS FQ table's IF FREQ column (None: no table)."""
    if if_freq is None:
        if n_if > 1:
            raise _fail(path, f"{n_if} IFs but no AIPS FQ table: their frequencies are unknown")
        return np.zeros(1), ("no AIPS FQ table: the single IF is taken at offset 0 from the FREQ axis",)
    if len(if_freq) < n_if:
        raise _fail(path, f"the AIPS FQ table lists {len(if_freq)} IF frequencies for {n_if} IFs in the data")
    return if_freq[:n_if], ()


def _assemble(path: str, header: fits.Header, cube: np.ndarray, uu: np.ndarray, vv: np.ndarray, ww: np.ndarray,
              if_freq, rows: RowCheck, time_jd: np.ndarray, antennas: tuple = ()) -> VisibilityFile:
    axes = _axes(header)
    for needed in ("COMPLEX", "STOKES", "FREQ"):
        if needed not in axes:
            raise _fail(path, f"no {needed} axis in the data array")
    naxis = int(header["NAXIS"])
    fits_index = {str(header.get(f"CTYPE{i}", "")).strip().upper(): i for i in range(2, naxis + 1)}
    codes = [STOKES_CODES.get(int(round(c)), "?") for c in
             _axis_values(header, fits_index["STOKES"], cube.shape[axes["STOKES"]])]
    # move to (row, IF, FREQ, STOKES, 3), dropping the degenerate RA/DEC axes
    order = [0] + [axes[a] for a in ("IF", "FREQ", "STOKES", "COMPLEX") if a in axes]
    rest = [i for i in range(cube.ndim) if i not in order]
    cube = np.transpose(cube, order + rest).reshape(cube.shape[0], *[cube.shape[i] for i in order[1:]])
    if "IF" not in axes:
        cube = cube[:, None]
    n_if, n_chan = cube.shape[1], cube.shape[2]
    chan = _axis_values(header, fits_index["FREQ"], n_chan)
    offsets, notes = _if_offsets(path, if_freq, n_if)
    freq = offsets[:, None] + chan[None, :]  # (IF, FREQ)
    vis, w, stokes_from = _stokes_i(cube, codes, path)  # (row, IF, FREQ)
    nu = np.broadcast_to(freq[None], vis.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        u, v = uu[:, None, None] * nu, vv[:, None, None] * nu
        sane_row = np.isfinite(uu) & np.isfinite(vv) & np.isfinite(ww) & \
            (np.maximum(np.maximum(abs(uu), abs(vv)), abs(ww)) <= MAX_BASELINE_S)
        sane = sane_row[:, None, None] & np.isfinite(nu) & (nu > 0) & np.isfinite(u) & np.isfinite(v)
    valid = w > 0
    masks = {}  # each dropped visibility counted once, under the first reason that applies
    for name, mask in (("coordinates", ~sane), ("antennas", rows.bad_antennas[:, None, None]),
                       ("times", rows.bad_times[:, None, None])):
        masks[name] = valid & np.broadcast_to(mask, valid.shape)
        valid = valid & ~masks[name]
    masks["weights"] = absurd_weights(np.where(valid, w, 0.0))
    valid &= ~masks["weights"]
    masks["auto"] = valid & np.broadcast_to(rows.autocorrelations[:, None, None], valid.shape)
    keep = valid & ~masks["auto"]
    counts = {k: int(m.sum()) for k, m in masks.items()}
    if not keep.any():
        raise _fail(path, _nothing_left(keep.size, counts))
    ra, dec, position_notes = _position(path, header, fits_index)
    date_obs, date_notes = header_date(header.get("DATE-OBS", ""))
    row_of = np.broadcast_to(np.arange(cube.shape[0])[:, None, None], keep.shape)[keep]
    return VisibilityFile(
        uv=np.stack([u[keep], v[keep]], axis=1), vis=vis[keep], weight=w[keep], freq_hz=nu[keep].copy(),
        antenna1=rows.antenna1[row_of], antenna2=rows.antenna2[row_of], time_jd=time_jd[row_of], antennas=antennas,
        path=path, ra_deg=ra, dec_deg=dec, date_obs=date_obs, telescope=str(header.get("TELESCOP", "")).strip(),
        source=str(header.get("OBJECT", "")).strip(), n_read=int(keep.size), n_flagged=int((~keep).sum()),
        stokes_from=stokes_from, n_bad_coordinates=counts["coordinates"],
        warnings=notes + position_notes + date_notes + _row_notes(counts, rows.known),
        n_autocorrelations=counts["auto"], n_bad_antennas=counts["antennas"], n_bad_times=counts["times"],
        n_bad_weights=counts["weights"],
        bandwidth_hz=float(n_if * n_chan * abs(header.get(f"CDELT{fits_index['FREQ']}", 0.0) or 0.0)))


def _position(path: str, header: fits.Header, fits_index: dict) -> tuple[float, float, tuple[str, ...]]:
    try:
        return header_position(header, fits_index.get("RA"), fits_index.get("DEC"))
    except ValueError as err:
        raise _fail(path, str(err)) from None


def _nothing_left(n: int, counts: dict) -> str:
    if counts["auto"]:
        return (f"no cross-correlation: every usable visibility ({counts['auto']} of {n}) is an autocorrelation "
                f"(antenna 1 = antenna 2)")
    return (f"no unflagged visibility ({n} read: weight <= 0 or not finite, or {counts['coordinates']} with unusable "
            f"u, v, w or frequency, {counts['antennas']} with unlisted antennas, {counts['times']} with no time, "
            f"{counts['weights']} with unphysical weights)")


def _row_notes(counts: dict, antennas_known: bool) -> tuple[str, ...]:
    said = {"coordinates": "visibilities with non-finite or absurd u, v, w or frequency flagged",
            "antennas": "visibilities flagged: antennas not in the AN table (or over the bound without one) or a "
                        "non-finite BASELINE",
            "times": "visibilities with a non-finite time flagged",
            "weights": "visibilities flagged: weight over 1e18 Jy^-2 or 1e8 times the median (an unphysical sigma)",
            "auto": "autocorrelations (antenna 1 = antenna 2) dropped"}
    notes = tuple(f"{counts[k]} {text}" for k, text in said.items() if counts[k])
    return notes + (() if antennas_known else ("no BASELINE parameter: the antennas are unknown, so there is no "
                                               "self-calibration and no closure quantity",))
