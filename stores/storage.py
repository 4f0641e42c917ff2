"""Where stores live: a local path or ``s3://bucket/prefix``, through fsspec/s3fs and zarr v3.

Endpoint and credentials come from the standard AWS environment (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles...) or from
explicit ``storage_options``; never from code, and they are never logged.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Optional

import fsspec

if TYPE_CHECKING:
    import zarr

StorageOptions = Optional[dict[str, Any]]

# short connect timeout and botocore's standard retries (3 attempts), under s3fs's own retry loop: a stopped
# endpoint fails a run in seconds, not minutes, while a transient error is still retried
S3_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


class StoreUnreachableError(RuntimeError):
    """The storage endpoint could not be reached or refused access."""


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def normalise_url(url: str) -> str:
    """Absolute local paths (Ray workers may run elsewhere in the tree); remote URLs without a trailing '/'."""
    if is_remote(url):
        return url.rstrip("/")
    return os.path.abspath(url.removeprefix("file://"))


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts]) if is_remote(root) else os.path.join(root, *parts)


def resolve_options(url: str, storage_options: StorageOptions = None) -> StorageOptions:
    """fsspec options for url: None for local paths; for s3, no instance cache and short connect timeouts."""
    if not is_remote(url):
        return None
    options: dict[str, Any] = {"skip_instance_cache": True}
    if url.startswith("s3://"):
        options["config_kwargs"] = dict(S3_TIMEOUTS)
    options.update(storage_options or {})
    return options


def filesystem(url: str, storage_options: StorageOptions = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for url."""
    url = normalise_url(url)
    return fsspec.core.url_to_fs(url, **(resolve_options(url, storage_options) or {}))


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``http://user:secret@host`` -> ``http://host``)."""
    return _USERINFO.sub(r"\1", str(text))


def endpoint_of(url: str, storage_options: StorageOptions = None) -> str:
    """Where a remote url's data lives, for error messages (never credentials, even inside the URL)."""
    opts = storage_options or {}
    return redact(opts.get("endpoint_url") or opts.get("client_kwargs", {}).get("endpoint_url") or
                  os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or
                  "the default AWS endpoint")


def check_reachable(url: str, storage_options: StorageOptions = None) -> None:
    """Fail within seconds, with a readable message, if url's endpoint or bucket cannot be used."""
    if not is_remote(url):
        return
    probe = dict(storage_options or {})
    if url.startswith("s3://"):  # one attempt, short timeouts: a probe, not a transfer
        probe["config_kwargs"] = {**S3_TIMEOUTS, **probe.get("config_kwargs", {}), "retries": {"max_attempts": 1}}
    fs, path = filesystem(url, probe)
    if hasattr(fs, "retries"):
        fs.retries = 1  # s3fs's own retry loop around botocore's
    bucket = path.split("/", 1)[0]
    endpoint = redact(getattr(fs, "endpoint_url", None) or endpoint_of(url, storage_options))
    try:
        fs.ls(bucket, refresh=True)
    except FileNotFoundError:
        raise StoreUnreachableError(f"{url}: bucket {bucket!r} does not exist at {endpoint}") from None
    except Exception as err:  # botocore/aiohttp connection, credential and permission errors
        first = redact(str(err).splitlines()[0] if str(err) else "")[:200]
        raise StoreUnreachableError(f"{url}: cannot use the store at {endpoint} ({type(err).__name__}: {first})") \
            from None


def open_group(url: str, mode: str, storage_options: StorageOptions = None) -> "zarr.Group":
    url = normalise_url(url)
    import zarr  # here, so that reading a checkpoint needs no zarr (a GPU box with torch alone)

    return zarr.open_group(store=url, mode=mode, storage_options=resolve_options(url, storage_options))


ATTR = "radio_ddrm"  # the attribute holding every radio-ddrm store's metadata


def read_attrs(url: str, storage_options: StorageOptions = None) -> Optional[dict]:
    """The ``radio_ddrm`` attributes of the zarr group at url, or None if there is no readable store."""
    try:
        return dict(open_group(url, "r", storage_options).attrs.get(ATTR) or {}) or None
    except (FileNotFoundError, KeyError, ValueError):
        return None


def exists(url: str, storage_options: StorageOptions = None) -> bool:
    fs, path = filesystem(url, storage_options)
    return fs.exists(path)


def remove(url: str, storage_options: StorageOptions = None) -> None:
    fs, path = filesystem(url, storage_options)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def rename(src: str, dst: str, storage_options: StorageOptions = None) -> None:
    """Move a directory tree: an atomic rename locally; copy then delete on object stores."""
    fs, src_path = filesystem(src, storage_options)
    _, dst_path = filesystem(dst, storage_options)
    if not is_remote(src):
        os.replace(src_path, dst_path)
        return
    files = fs.find(src_path)
    fs.copy(files, [dst_path + f[len(src_path):] for f in files])
    fs.rm(src_path, recursive=True)


def write_bytes(url: str, data: bytes, storage_options: StorageOptions = None) -> None:
    """Write a whole file atomically: locally to a temporary name beside it, then renamed over it (a reader
    sees the old file or the new, never a part); an object store's PUT is atomic already."""
    fs, path = filesystem(url, storage_options)
    if is_remote(url):
        with fs.open(path, "wb") as f:
            f.write(data)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{os.path.join(os.path.dirname(path), '.' + os.path.basename(path))}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable(url: str, storage_options: StorageOptions = None) -> None:
    """Fail at once, with a readable message, unless outputs can be written under url: a local folder
    that can be created and written into, or a reachable store (``check_reachable``)."""
    if is_remote(url):
        check_reachable(url, storage_options)
        return
    path = normalise_url(url)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-probe-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as err:
        raise StoreUnreachableError(f"cannot write outputs under {url!r} ({type(err).__name__}: "
                                    f"{err.strerror or err})") from None


def checksum(url: str, storage_options: StorageOptions = None) -> str:
    """SHA256 of a file's bytes; of a folder (a Measurement Set), over its files' relative paths and bytes."""
    import hashlib

    fs, path = filesystem(url, storage_options)
    digest = hashlib.sha256()
    files = sorted(fs.find(path)) if fs.isdir(path) else [path]
    for f in files:
        if len(files) > 1 or f != path:
            digest.update(f[len(path):].lstrip("/").encode() + b"\0")
        with fs.open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_bytes(url: str, storage_options: StorageOptions = None) -> Optional[bytes]:
    """The file's bytes, or None if it does not exist."""
    fs, path = filesystem(url, storage_options)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        return f.read()
