"""CASA Measurement Sets, read through pyuvdata (the ``ms`` extra: pyuvdata + python-casacore).

pyuvdata reads the MS (UVW, DATA, FLAG, WEIGHT_SPECTRUM or WEIGHT, SPECTRAL_WINDOW, FIELD, OBSERVATION)
and writes it as uvfits in a temporary folder, which ``sources.uvfits.read_uvfits`` then reads: one
reader of visibilities, one set of conventions (baseline sign, Stokes I, flags, weights), for both formats.
``read_visibilities`` picks the reader from the path.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import replace

from .uvfits import VisibilityFile, VisibilityFileError, check_input, read_uvfits

MS_EXTRA = "pip install 'radio-ddrm[ms]' (pyuvdata and python-casacore)"


def is_measurement_set(path: str) -> bool:
    """A Measurement Set is a folder (a casacore table: table.info inside), usually named *.ms."""
    path = path.rstrip("/")
    return os.path.isdir(path) or path.lower().endswith(".ms")


def read_measurement_set(path: str) -> VisibilityFile:
    """Stokes I visibilities of a Measurement Set; VisibilityFileError (naming the file) if unusable."""
    name = os.path.basename(path.rstrip("/"))
    check_input(path)
    if not os.path.isfile(os.path.join(path, "table.info")):
        raise VisibilityFileError(f"{name}: not a Measurement Set (no casacore table.info in the folder)")
    try:
        import pyuvdata
    except ImportError:
        raise VisibilityFileError(f"{name}: reading Measurement Sets needs the ms extra: {MS_EXTRA}") from None
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        try:
            uvd = pyuvdata.UVData.from_file(path, file_type="ms", ignore_single_chan=False)
            out = os.path.join(tmp, "ms.uvfits")
            uvd.write_uvfits(out, force_phase=True)
        except ImportError:
            raise VisibilityFileError(f"{name}: reading Measurement Sets needs the ms extra: {MS_EXTRA}") from None
        except Exception as err:  # casacore and pyuvdata raise RuntimeError, ValueError, KeyError...
            raise VisibilityFileError(f"{name}: unreadable Measurement Set ({type(err).__name__}: {err})") from None
        try:
            vis = read_uvfits(out)
        except VisibilityFileError as err:  # e.g. no unflagged visibility: name the MS, not the temporary file
            raise VisibilityFileError(f"{name}: {str(err).split(': ', 1)[-1]}") from None
    return replace(vis, path=path)


def read_visibilities(path: str) -> VisibilityFile:
    """A uvfits file or a Measurement Set folder, by its path."""
    return read_measurement_set(path) if is_measurement_set(path) else read_uvfits(path)
