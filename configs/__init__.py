"""Stage configurations: one frozen dataclass per stage, named presets, validated where built."""

from .common import FIRST_PIXEL_SCALE_ARCSEC, SPLITS, check_name, from_preset, resolve, stable_hash
from .prepare import PREPARE_PRESETS, SHARED_FIRST, PrepareConfig, prepare_preset
from .survey import (ARRAY_CHOICES, GPU_BATCH, KEY_VERSION, PRIORS, RECONSTRUCT_PRESETS, SURVEY_PRESETS,
                     ReconstructConfig, SurveyConfig, reconstruct_preset, survey_preset)
from .train import TRAIN_PRESETS, TrainConfig, train_preset

__all__ = [
    "FIRST_PIXEL_SCALE_ARCSEC", "SPLITS", "check_name", "from_preset", "resolve", "stable_hash", "PREPARE_PRESETS",
    "SHARED_FIRST", "PrepareConfig", "prepare_preset", "ARRAY_CHOICES", "GPU_BATCH", "KEY_VERSION", "PRIORS",
    "RECONSTRUCT_PRESETS", "SURVEY_PRESETS", "ReconstructConfig", "SurveyConfig", "reconstruct_preset",
    "survey_preset", "TRAIN_PRESETS", "TrainConfig", "train_preset",
]
