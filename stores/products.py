"""A result folder's products, whole or absent.

A folder holds products (image.fits, panel.png, gains.csv...) and ``summary.json``, which lists every
product under "products": its file name, bytes and SHA256. Writing (``commit``): the products are rendered
to bytes first, by the caller; then the folder's earlier result is cleared (its summary first, then every
other file in the folder, which is one input's under one run key), each product is written whole (``storage.write_bytes``), and
the summary last. If a write fails, what was written is removed again and ``ProductWriteError`` names the
input and the folder. A result is taken as done (``verified``) only when its summary exists and every
product it lists is there with its recorded SHA256: a deleted, emptied or edited product means "image again".
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

from stores import storage
from stores.jsonio import dumps
from stores.storage import StorageOptions

SUMMARY = "summary.json"


class ProductWriteError(OSError):
    """Products could not be written (a full disk, a read-only or unreachable store): a fault of the run's
    output, not of the input, so the run stops (exit 2) instead of skipping the file."""


def read_summary(out: str, storage_options: StorageOptions = None) -> Optional[dict[str, Any]]:
    """The folder's summary, or None if it is missing or not JSON."""
    raw = storage.read_bytes(storage.join(out, SUMMARY), storage_options)
    try:
        summary = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def verified(summary: dict[str, Any], out: str, storage_options: StorageOptions = None) -> bool:
    """Whether every product the summary lists is in ``out`` with its recorded SHA256 (a summary that lists
    none, written before products were recorded, is not verified)."""
    listed = summary.get("products")
    if not isinstance(listed, dict) or not listed:
        return False
    for name, record in listed.items():
        data = storage.read_bytes(storage.join(out, os.path.basename(name)), storage_options)
        if data is None or not isinstance(record, dict) or hashlib.sha256(data).hexdigest() != record.get("sha256"):
            return False
    return True


def clear(out: str, storage_options: StorageOptions = None) -> None:
    """Remove the folder's result: the summary first (so nothing half-removed reads as done), then every other
    file in it (the folder is one input's under one run key: whatever else is there is a product of it)."""
    storage.remove(storage.join(out, SUMMARY), storage_options)
    fs, path = storage.filesystem(out, storage_options)
    if fs.exists(path):
        for f in fs.find(path):
            fs.rm(f)


def commit(out: str, products: dict[str, bytes], summary: dict[str, Any], what: str,
           storage_options: StorageOptions = None) -> dict[str, Any]:
    """Write ``products`` (file name -> bytes) into a cleared ``out``, then ``summary`` with their record
    under "products" (module docstring); returns the summary as written. ``what`` names the input in errors."""
    written: list[str] = []
    try:
        clear(out, storage_options)
        for name, data in products.items():
            url = storage.join(out, name)
            storage.write_bytes(url, data, storage_options)
            written.append(url)
        summary = {**summary, "products": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                                           for name, data in products.items()}}
        storage.write_bytes(storage.join(out, SUMMARY), dumps(summary, indent=2).encode(), storage_options)
    except OSError as err:
        for url in written:
            _remove_quietly(url, storage_options)
        raise ProductWriteError(f"{what}: cannot write its products under {out} "
                                f"({type(err).__name__}: {err.strerror or err})") from None
    return summary


def _remove_quietly(url: str, storage_options: StorageOptions) -> None:
    try:
        storage.remove(url, storage_options)
    except OSError:
        pass
