"""The inputs of a run: file lists and globs expanded (local or s3://), and remote inputs copied to a local
folder for the readers (astropy and casacore read local files)."""

from __future__ import annotations

import os

from stores import storage
from stores.storage import StorageOptions


def expand_files(files, storage_options: StorageOptions = None) -> list[str]:
    """A list of paths/URLs and globs (local or s3://) -> the matching files, sorted, duplicates dropped."""
    out: list[str] = []
    for pattern in [files] if isinstance(files, str) else list(files):
        if any(ch in pattern for ch in "*?["):
            fs, path = storage.filesystem(pattern, storage_options)
            prefix = pattern.split("://", 1)[0] + "://" if storage.is_remote(pattern) else ""
            out += [prefix + p for p in sorted(fs.glob(path))]
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def local_copy(path: str, storage_options: StorageOptions, directory: str) -> str:
    """The file itself if local, else a copy in ``directory`` (astropy and casacore read local files; a
    Measurement Set is a folder, copied whole)."""
    if not storage.is_remote(path):
        return path
    fs, remote = storage.filesystem(path, storage_options)
    local = os.path.join(directory, os.path.basename(path.rstrip("/")))
    if fs.isdir(remote):
        fs.get(remote.rstrip("/") + "/", local, recursive=True)
        return local
    with open(local, "wb") as f:
        f.write(storage.read_bytes(path, storage_options) or b"")
    return local
