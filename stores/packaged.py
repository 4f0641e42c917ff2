"""Priors shipped inside the package (``ddrm/data/priors/<name>/``), loaded offline.

A packaged prior is an ordinary checkpoint directory (``model.pt`` + ``prior.json``, see
:mod:`stores.checkpoints`) holding only the EMA weights in float16, plus ``MODEL_CARD.md`` and
``SHA256`` (the checksum of ``model.pt``, checked on every load). Anywhere a checkpoint URL is
accepted, a packaged prior's name (``"first"``) may be given instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from typing import Optional

import torch

from configs.common import PACKAGED_PRIORS  # noqa: F401  (defined once, where the configs read it too)

PACKAGE = "ddrm.data.priors"
WEIGHTS, META, CHECKSUM = "model.pt", "prior.json", "SHA256"


def packaged_names() -> list[str]:
    root = resources.files(PACKAGE)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.joinpath(META).is_file())


def packaged_path(name: str) -> Optional[str]:
    """The directory of packaged prior ``name``, or None if there is none by that name."""
    if not name or "/" in name or "://" in name:
        return None
    path = resources.files(PACKAGE).joinpath(name)
    return str(path) if path.joinpath(META).is_file() else None


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def verify(directory: str) -> None:
    """ValueError unless model.pt matches the SHA256 file written beside it."""
    expected = open(os.path.join(directory, CHECKSUM)).read().split()[0]
    actual = sha256(os.path.join(directory, WEIGHTS))
    if actual != expected:
        raise ValueError(f"{directory}: {WEIGHTS} checksum {actual[:12]}… does not match {CHECKSUM} {expected[:12]}…")


def export(state: dict, meta_json: dict, directory: str, card: str) -> str:
    """Write a packaged prior: EMA weights as float16, prior.json, the model card and the checksum."""
    os.makedirs(directory, exist_ok=True)
    ema = {k: (v.half() if v.is_floating_point() else v) for k, v in state["ema"].items()}
    torch.save({"ema": ema, "step": int(state["step"])}, os.path.join(directory, WEIGHTS))
    with open(os.path.join(directory, META), "w") as f:
        json.dump(meta_json, f, indent=2, sort_keys=True)
    with open(os.path.join(directory, "MODEL_CARD.md"), "w") as f:
        f.write(card)
    with open(os.path.join(directory, CHECKSUM), "w") as f:
        f.write(f"{sha256(os.path.join(directory, WEIGHTS))}  {WEIGHTS}\n")
    return directory


def model_card(name: str, meta: dict, history: list[dict], extra: str = "") -> str:
    """The model card's Markdown: data, split, configuration, steps, time, hardware, loss curve, samples."""
    train = meta.get("train") or {}
    wall = sum(r.get("window_s", 0.0) for r in history)
    last = history[-1] if history else {}
    lines = [
        f"# Packaged prior `{name}`", "",
        "A DDPM prior (ε-prediction, T = 1000, cosine schedule) over FIRST radio galaxies, for DDRM and",
        "the other samplers of radio-ddrm. EMA weights stored as float16; `load_prior(\"" + name + "\")` or",
        f"`--prior {name}` / `--checkpoint {name}` loads them offline (`torch.load(..., weights_only=True)`).", "",
        "| | |", "|---|---|",
        f"| data | {meta.get('dataset')} (dataset hash `{meta.get('dataset_hash')}`) |",
        "| split | firstgalaxydata's literature split: trained on train (1,758), chosen on valid, tested on test |",
        f"| image size trained | random windows {train.get('crop_sizes')} of the {meta.get('N')}² images; "
        "size-independent network (pixel norm, no attention): any N |",
        f"| U-Net | `{json.dumps(meta.get('unet'))}` |",
        f"| optimiser | `{json.dumps(train.get('optim'))}`, batch {train.get('batch_size')} per worker at the first "
        "crop size (area-scaled) |",
        f"| steps | {meta.get('step')} of {meta.get('steps')} |",
        f"| final loss | {last.get('loss', float('nan')):.5f} |",
        f"| wall time | {wall / 60:.1f} min of training ({last.get('world_size', '?')} Ray Train workers) |", "",
        "![loss](loss.png)", "", "![samples](samples.png)", "", extra]
    return "\n".join(lines) + "\n"
