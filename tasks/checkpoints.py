"""Prior checkpoints: ``model.pt`` (a state_dict, never a pickled class) + ``prior.json`` (configs).

    model.pt    {"model": U-Net state_dict, "ema": EMA state_dict, "optimizer": AdamW state_dict,
                 "step": int}, read with torch.load(..., weights_only=True)
    prior.json  {"format", "unet", "schedule", "train", "N", "dataset", "step", "steps"}

A checkpoint directory is local or on S3 (read through fsspec). Loading into a different
U-Net or schedule configuration raises a ValueError that names both, instead of a partial load.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, NamedTuple, Optional

import torch

from ddrm.schedule import Schedule
from ddrm.unet import UNet, UNetConfig

from . import storage
from .storage import StorageOptions

FORMAT = "radio-ddrm/prior@1"
WEIGHTS, META = "model.pt", "prior.json"


class Prior(NamedTuple):
    """The EMA denoiser network (eval mode, on ``device``), its schedule, and the checkpoint's metadata."""

    model: UNet
    schedule: Schedule
    meta: dict


def write_checkpoint(directory: str, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write model.pt and prior.json into a local directory (Ray Train then persists it)."""
    os.makedirs(directory, exist_ok=True)
    torch.save(state, os.path.join(directory, WEIGHTS))
    with open(os.path.join(directory, META), "w") as f:
        json.dump({**meta, "format": FORMAT, "step": int(state["step"])}, f, indent=2, sort_keys=True)


def read_meta(checkpoint: str, storage_options: StorageOptions = None) -> dict:
    fs, path = storage.filesystem(checkpoint, storage_options)
    try:
        with fs.open(f"{path}/{META}", "r") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{checkpoint}: not a radio-ddrm prior checkpoint (no {META})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{checkpoint}: unknown checkpoint format {meta.get('format')!r}; expected {FORMAT}")
    return meta


def read_state(checkpoint: str, storage_options: StorageOptions = None,
               map_location: Optional[torch.device] = None) -> dict:
    """model.pt as plain tensors and numbers (``weights_only=True``: no code is unpickled)."""
    fs, path = storage.filesystem(checkpoint, storage_options)
    with fs.open(f"{path}/{WEIGHTS}", "rb") as f:
        return torch.load(io.BytesIO(f.read()), map_location=map_location or "cpu", weights_only=True)


def check_compatible(meta: dict, unet: UNetConfig, schedule: Schedule, where: str) -> None:
    """ValueError naming the difference if the checkpoint was trained with another U-Net or schedule."""
    for label, saved, wanted in (("U-Net", meta.get("unet"), unet.to_dict()),
                                 ("schedule", meta.get("schedule"), schedule.to_dict())):
        if saved != wanted:
            diff = {k: (saved.get(k), wanted.get(k)) for k in sorted(set(saved or {}) | set(wanted))
                    if (saved or {}).get(k) != wanted.get(k)}
            raise ValueError(f"{where}: checkpoint {label} config differs from this run's "
                             f"(field: (checkpoint, requested)) {diff}")


def load_prior(checkpoint: str, device: torch.device, *, expect_unet: Optional[UNetConfig] = None,
               expect_schedule: Optional[Schedule] = None, storage_options: StorageOptions = None) -> Prior:
    """The EMA weights of a checkpoint in a fresh U-Net; optional expected configs are checked first."""
    meta = read_meta(checkpoint, storage_options)
    unet, schedule = UNetConfig.from_dict(meta["unet"]), Schedule(**meta["schedule"])
    check_compatible(meta, expect_unet or unet, expect_schedule or schedule, checkpoint)
    model = UNet(unet)
    model.load_state_dict(read_state(checkpoint, storage_options)["ema"])
    return Prior(model.to(device).eval().requires_grad_(False), schedule, meta)


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
            found.append((int(read_meta(url, storage_options)["step"]), url))
        except (ValueError, KeyError, json.JSONDecodeError):
            continue  # a checkpoint cut off mid-upload
    return sorted(found)


def latest_checkpoint(run_dir: str, storage_options: StorageOptions = None) -> Optional[tuple[int, str]]:
    found = list_checkpoints(run_dir, storage_options)
    return found[-1] if found else None
