"""What reading a compressed FITS file may cost, bounded before astropy decompresses it into memory.

Every HDU declares the bytes of its data in its header,

    size = |BITPIX|/8 · GCOUNT · (PCOUNT + NAXIS1 ⋯ NAXISn)    (random groups: NAXIS1 = 0, the product over 2..n)

padded to 2880-byte blocks. A gzip or bzip2 file is read here as a stream, one header at a time: the declared
sizes are added up, their sum times ``READ_FACTOR`` (the reader's copies: the raw array, float64, Stokes I)
must fit in the memory available, and the data are skipped in 1 MiB pieces, never kept. A stream that runs
past its declared HDUs by more than ``SLACK_BYTES`` (a decompression bomb: a small file padded with what
compresses to nothing) is refused as soon as it does. Peak memory: one header and one piece.
"""

from __future__ import annotations

import bz2
import gzip
from typing import Callable, Optional

BLOCK = 2880
READ_FACTOR = 6
SLACK_BYTES = 1 << 20
MAX_HEADER_BLOCKS = 1000  # 2.9 MB of header cards (36 a block)
PIECE = 1 << 20


def opener(path: str) -> Optional[Callable]:
    """gzip.open or bz2.open for a compressed file (by its magic bytes), None for any other."""
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open
    if magic == b"BZh":
        return bz2.open
    return None


def declared_size(header_bytes: bytes) -> Optional[int]:
    """Padded data bytes that a header declares (module docstring), None if it is not a FITS header."""
    from astropy.io import fits

    try:
        h = fits.Header.fromstring(header_bytes.decode("ascii", "replace"))
        naxis = int(h["NAXIS"])
        dims = [int(h[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        bitpix = abs(int(h["BITPIX"]))
    except (KeyError, ValueError, TypeError):
        return None
    if naxis == 0:
        return 0
    groups = bool(h.get("GROUPS", False)) and dims[0] == 0
    product = 1
    for d in dims[1:] if groups else dims:
        product *= d
    size = bitpix // 8 * int(h.get("GCOUNT", 1)) * (int(h.get("PCOUNT", 0)) + product)
    return -(-size // BLOCK) * BLOCK


def _header(stream) -> Optional[bytes]:
    """The next header's blocks, up to its END card; None at the end of the stream or if there is none."""
    blocks = []
    for _ in range(MAX_HEADER_BLOCKS):
        block = stream.read(BLOCK)
        if len(block) < BLOCK:
            return None
        blocks.append(block)
        if any(block[i:i + 8] == b"END     " for i in range(0, BLOCK, 80)):
            return b"".join(blocks)
    return None


def check_compressed(path: str, available: int) -> None:
    """ValueError if the compressed file at ``path`` declares more data than ``available`` bytes of memory
    can read (``READ_FACTOR``), or decompresses to more than it declares; nothing for an uncompressed file
    (its size on disk bounds what is read). ``available`` 0: unknown, only the declared sizes bound it."""
    open_ = opener(path)
    if open_ is None:
        return
    declared = read = 0
    with open_(path, "rb") as stream:
        while True:
            header = _header(stream)
            if header is None:
                break
            size = declared_size(header)
            if size is None:
                break
            declared += len(header) + size
            read += len(header)
            if available and declared * READ_FACTOR > available:
                raise ValueError(f"declares {declared / 2**30:.2f} GiB of data once decompressed; reading it needs "
                                 f"about {READ_FACTOR}x that, more than the {available / 2**30:.1f} GiB available")
            read += _skip(stream, size)
        while True:  # past the last HDU: what remains must be a little padding at most
            piece = stream.read(PIECE)
            if not piece:
                return
            read += len(piece)
            if read > declared + SLACK_BYTES:
                raise ValueError(f"decompresses to more than the {declared / 2**20:.1f} MiB its FITS headers declare "
                                 f"(refused after {read / 2**20:.1f} MiB: a decompression bomb or a damaged file)")


def _skip(stream, size: int) -> int:
    done = 0
    while done < size:
        piece = stream.read(min(PIECE, size - done))
        if not piece:
            break
        done += len(piece)
    return done


def available_memory() -> int:
    """Bytes of memory available now (Linux MemAvailable; 0 where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
