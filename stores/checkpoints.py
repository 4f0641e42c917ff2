"""Prior checkpoints: ``model.pt`` (a state_dict, never a pickled class) + ``prior.json`` (configs).

    model.pt    {"model": U-Net state_dict, "ema": EMA state_dict, "optimizer": AdamW state_dict,
                 "step": int}, read with torch.load(..., weights_only=True)
    prior.json  PriorMeta.to_json(): {"format", "kind", "unet", "schedule", "train", "N", "dataset",
                "dataset_hash", "step", "steps", "package_version"}

A checkpoint directory is local or on S3 (read through fsspec). Loading into a different
U-Net or schedule configuration raises a ValueError that names both, instead of a partial load.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ddrm.diffusion.ddpm import EpsDenoiser
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.unet import UNet, UNetConfig
from stores import packaged, storage
from stores.storage import StorageOptions

FORMAT = "radio-ddrm/prior@1"
WEIGHTS, META, CHECKSUM = "model.pt", "prior.json", packaged.CHECKSUM
log = logging.getLogger(__name__)

# prior.json values are bounded before anything is allocated (a hostile or corrupt file could ask for
# terabytes): each field's largest accepted value, and the network's largest parameter count
LIMITS = {"N": 8192, "T": 100_000, "in_channels": 16, "base_channels": 1024, "channel_mult": 64, "depth": 10,
          "num_res_blocks": 16, "num_heads": 64, "norm_groups": 1024}
MAX_PARAMETERS = 500_000_000  # 2 GB of float32


def _bounded(d: dict, where: str) -> None:
    """ValueError naming the field if prior.json asks for more than LIMITS allow."""
    unet, sched = d.get("unet") or {}, d.get("schedule") or {}
    values = {"N": d.get("N"), "T": sched.get("T"), **{k: unet.get(k) for k in LIMITS if k in unet},
              "depth": len(unet.get("channel_mult") or ())}
    if unet.get("channel_mult"):
        values["channel_mult"] = max(unet["channel_mult"])
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > LIMITS[key]:
            raise ValueError(f"{where}: {META} asks for {key} = {value}, over the limit {LIMITS[key]}")


def parameter_count(unet: UNetConfig) -> int:
    """The U-Net's parameter count, from a network built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in UNet(unet).parameters())


@dataclass(frozen=True)
class PriorMeta:
    """prior.json, typed: what a prior is (``kind`` "ddpm" or "gaussian"), the image size N it was
    trained on, its U-Net and schedule, and where it came from. ``format`` is the file version."""

    kind: str
    N: int
    schedule: Schedule
    unet: Optional[UNetConfig] = None
    step: int = 0
    steps: int = 0
    train: dict = field(default_factory=dict)
    dataset: Optional[str] = None
    dataset_hash: Optional[str] = None
    package_version: Optional[str] = None
    format: str = FORMAT

    @classmethod
    def from_json(cls, d: dict, where: str) -> "PriorMeta":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{where}: unknown checkpoint format {got!r}; expected {FORMAT}")
        try:
            _bounded(d, where)
            return cls(kind=d.get("kind", "ddpm"), N=int(d["N"]), schedule=Schedule(**d["schedule"]),
                       unet=UNetConfig.from_dict(d["unet"]) if d.get("unet") else None, step=int(d.get("step", 0)),
                       steps=int(d.get("steps", 0)), train=d.get("train") or {}, dataset=d.get("dataset"),
                       dataset_hash=d.get("dataset_hash"), package_version=d.get("package_version"))
        except (KeyError, TypeError, ValueError) as err:
            if str(err).startswith(f"{where}: "):
                raise
            raise ValueError(f"{where}: malformed {META} ({type(err).__name__}: {err})") from None

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("kind", "N", "step", "steps", "train", "dataset", "dataset_hash",
                                           "package_version", "format")}
        return {**d, "schedule": self.schedule.to_dict(), "unet": self.unet.to_dict() if self.unet else None}

    @property
    def any_size(self) -> bool:
        """True when the denoiser's output at a pixel depends on its receptive field only (pixel norm,
        no attention), so the prior applies at any N; the analytic prior is refitted per N."""
        if self.kind == "gaussian":
            return False
        u = self.unet
        return u is not None and u.norm == "pixel" and not u.attention_levels and not u.mid_attention

    def identity(self) -> dict:
        """What determines the prior's outputs (for result keys)."""
        d = self.to_json()
        return {k: d[k] for k in ("kind", "N", "unet", "schedule", "train", "step", "dataset_hash")}

    def check(self, where: str, *, N: Optional[int] = None, unet: Optional[UNetConfig] = None,
              schedule: Optional[Schedule] = None, max_K: Optional[int] = None) -> None:
        """ValueError naming the difference unless the prior fits what the caller expects: images of
        size N (any N for a size-independent network), this U-Net and schedule, K <= T."""
        for label, saved, wanted in (("U-Net", self.unet, unet), ("schedule", self.schedule, schedule)):
            if wanted is not None and saved != wanted:
                a, b = (saved.to_dict() if saved else {}), wanted.to_dict()
                diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
                raise ValueError(f"{where}: checkpoint {label} config differs from this run's "
                                 f"(field: (checkpoint, requested)) {diff}")
        if N is not None and N != self.N and not self.any_size:
            raise ValueError(f"{where}: the prior was trained on {self.N}x{self.N} images and is not size-independent; "
                             f"the data are {N}x{N}")
        if max_K is not None:
            self.schedule.timesteps(max_K)  # ValueError unless 1 <= K <= T


class Prior(EpsDenoiser):
    """A loaded prior, ready to use: the x̂_0 denoiser D(x_t, t) of the EMA network (eval mode, on its
    device) with its schedule (``ddrm.diffusion.ddpm.EpsDenoiser``), plus the checkpoint's metadata and the SHA256
    of the weights file it was loaded from. Every sampler takes it as its ``prior``."""

    def __init__(self, model: UNet, schedule: Schedule, meta: PriorMeta, sha256: str = "") -> None:
        super().__init__(model, schedule)
        self.meta, self.sha256 = meta, sha256


def write_checkpoint(directory: str, state: dict[str, Any], meta: PriorMeta) -> None:
    """Write model.pt, its SHA256 and prior.json into a local directory (Ray Train then persists it)."""
    os.makedirs(directory, exist_ok=True)
    torch.save(state, os.path.join(directory, WEIGHTS))
    with open(os.path.join(directory, CHECKSUM), "w") as f:
        f.write(f"{packaged.sha256(os.path.join(directory, WEIGHTS))}  {WEIGHTS}\n")
    with open(os.path.join(directory, META), "w") as f:
        json.dump({**meta.to_json(), "step": int(state["step"])}, f, indent=2, sort_keys=True)


_META_CACHE: dict[str, PriorMeta] = {}


def resolve(checkpoint: str) -> str:
    """A checkpoint URL, or the directory of the packaged prior of that name (e.g. ``"first"``)."""
    return packaged.packaged_path(checkpoint) or checkpoint


def read_meta(checkpoint: str, storage_options: StorageOptions = None, *, cache: bool = True) -> PriorMeta:
    """The checkpoint's PriorMeta, read once per process (checkpoints are immutable once written;
    ``cache=False`` for a scratch directory whose path may be reused). ``checkpoint`` may name a
    packaged prior."""
    checkpoint = resolve(checkpoint)
    if checkpoint not in _META_CACHE or not cache:
        fs, path = storage.filesystem(checkpoint, storage_options)
        if fs.isfile(path):
            raise ValueError(f"{checkpoint}: a prior is a checkpoint folder ({WEIGHTS} + {META}), not a file; "
                             f"give the folder that holds it")
        try:
            with fs.open(f"{path}/{META}", "r") as f:
                raw = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise ValueError(f"{checkpoint}: not a radio-ddrm prior checkpoint (no {META})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{checkpoint}: unreadable {META} ({err})") from None
        meta = PriorMeta.from_json(raw, checkpoint)
        if not cache:
            return meta
        _META_CACHE[checkpoint] = meta
    return _META_CACHE[checkpoint]


def read_weights(checkpoint: str, storage_options: StorageOptions = None) -> tuple[bytes, str]:
    """(model.pt's bytes, their SHA256), verified against the checkpoint's SHA256 file, packaged or not.
    ValueError if they differ; a logged warning if there is no SHA256 file."""
    checkpoint = resolve(checkpoint)
    fs, path = storage.filesystem(checkpoint, storage_options)
    try:
        with fs.open(f"{path}/{WEIGHTS}", "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ValueError(f"{checkpoint}: no {WEIGHTS} in the checkpoint") from None
    actual = hashlib.sha256(data).hexdigest()
    try:
        with fs.open(f"{path}/{CHECKSUM}", "r") as f:
            expected = (f.read().split() or [""])[0]
    except FileNotFoundError:
        log.warning("%s: no %s file; its %s (sha256 %s…) is loaded unverified", checkpoint, CHECKSUM, WEIGHTS,
                    actual[:12])
        return data, actual
    if actual != expected:
        raise ValueError(f"{checkpoint}: {WEIGHTS} checksum {actual[:12]}… does not match {CHECKSUM} {expected[:12]}… "
                         f"(a damaged or altered file)")
    return data, actual


def read_state(checkpoint: str, storage_options: StorageOptions = None,
               map_location: Optional[torch.device] = None) -> dict:
    """model.pt as plain tensors and numbers (``weights_only=True``: no code is unpickled), its checksum
    verified first (``read_weights``)."""
    return _load_weights(read_weights(checkpoint, storage_options)[0], checkpoint, map_location)


def _load_weights(data: bytes, where: str, map_location: Optional[torch.device] = None) -> dict:
    try:
        return torch.load(io.BytesIO(data), map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError (code refused), RuntimeError/EOFError (truncated)
        first = str(err).splitlines()[0][:200] if str(err) else ""
        raise ValueError(f"{where}: {WEIGHTS} does not load as plain weights ({type(err).__name__}: {first})") \
            from None


def load_prior(checkpoint: str, device: torch.device, *, expect_unet: Optional[UNetConfig] = None,
               expect_schedule: Optional[Schedule] = None, storage_options: StorageOptions = None) -> Prior:
    """The EMA weights of a checkpoint in a fresh U-Net; optional expected configs are checked first."""
    meta = read_meta(checkpoint, storage_options)
    meta.check(checkpoint, unet=expect_unet, schedule=expect_schedule)
    if meta.unet is None:
        raise ValueError(f"{checkpoint}: {META} has no U-Net configuration (kind {meta.kind!r})")
    if (n := parameter_count(meta.unet)) > MAX_PARAMETERS:
        raise ValueError(f"{checkpoint}: the U-Net of {META} has {n:,} parameters, over the limit {MAX_PARAMETERS:,}")
    data, digest = read_weights(checkpoint, storage_options)
    state = _load_weights(data, checkpoint)
    model = UNet(meta.unet)
    try:
        model.load_state_dict(state["ema"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise ValueError(f"{checkpoint}: {WEIGHTS} does not fit the U-Net of {META} "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    # channels-last: the convolutions' fastest layout on CPUs (and GPUs), the same numbers to rounding
    model = model.to(device, memory_format=torch.channels_last)
    return Prior(model.eval().requires_grad_(False), meta.schedule, meta, digest)


def list_checkpoints(run_dir: str, storage_options: StorageOptions = None) -> list[tuple[int, str]]:
    """(step, URL) of the complete checkpoints (both files present) under a Ray Train run, by step."""
    fs, path = storage.filesystem(run_dir, storage_options)
    if not fs.exists(path):
        return []
    fs.invalidate_cache(path)
    found = []
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith("checkpoint_") or not fs.exists(f"{entry}/{WEIGHTS}"):
            continue
        url = storage.join(run_dir, name)
        try:
            found.append((read_meta(url, storage_options).step, url))
        except (ValueError, KeyError, json.JSONDecodeError):
            continue  # a checkpoint cut off mid-upload
    return sorted(found)


def latest_checkpoint(run_dir: str, storage_options: StorageOptions = None) -> Optional[tuple[int, str]]:
    found = list_checkpoints(run_dir, storage_options)
    return found[-1] if found else None
