"""The parent survey flow end to end on a tiny config: real Prefect, real local Ray, local zarr."""

from dataclasses import replace
from pathlib import Path

import pytest

from configs import prepare_preset, reconstruct_preset, survey_preset, train_preset
from ddrm.diffusion.training import OptimConfig
from ddrm.diffusion.unet import UNetConfig
from flows.survey import survey
from tasks.train import read_history

MICRO = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), norm_groups=4)
TINY = survey_preset(
    "demo",
    prepare=prepare_preset("demo", name="tiny", N=16, n_images=64, shard_size=64, chunk_images=16),
    train=train_preset("demo", name="tiny", unet=MICRO, batch_size=8, num_workers=1, report_every=4,
                       checkpoint_every=8, optim=OptimConfig(steps=8, lr=2e-3, warmup_steps=1, ema_decay=0.5)),
    reconstruct=reconstruct_preset("demo", name="tiny", n_images=2, K_values=(3,), samples=2))


def snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def first_run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    return root, survey(TINY, root=str(root))


def test_survey_produces_the_table_for_all_three_arrays(first_run):
    root, out = first_run
    for array in ("vla", "eht", "alma"):
        for method in ("DDRM", "dirty", "CLEAN"):
            assert f"| {array} | 0.02 | 3 | {method} | 2 |" in out["markdown"]
    assert Path(out["report"], "gallery.png").exists() and out["fits"] == 3 * 2 * 4


def test_prefect_api_lists_the_flow_runs_and_the_table_artifact(first_run):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = {client.read_flow(r.flow_id).name for r in client.read_flow_runs()}
        artifacts = client.read_artifacts()
    assert {"survey", "prepare_dataset", "train_prior", "reconstruct_survey", "aggregate_metrics"} <= names
    tables = [a for a in artifacts if a.type == "table" and a.key == "survey-tiny"]
    assert tables and "psnr_mean" in str(tables[0].data)


def test_a_rerun_reuses_every_stage(first_run):
    root, out = first_run
    before = snapshot(root)
    history = read_history(out["checkpoint"].rsplit("/", 1)[0])
    again = survey(TINY, root=str(root))
    assert {k: again[k] for k in ("dataset", "checkpoint", "survey", "report")} == \
        {k: out[k] for k in ("dataset", "checkpoint", "survey", "report")}
    assert snapshot(root) == before  # no file written or rewritten: no stage recomputed
    assert read_history(out["checkpoint"].rsplit("/", 1)[0]) == history


def test_gaussian_prior_survey_needs_no_training(ray_session, tmp_path):
    out = survey(replace(TINY, prior="gaussian", fits=False), root=str(tmp_path))
    assert out["checkpoint"] == "gaussian" and not (tmp_path / "priors").exists()


def test_survey_config_errors():
    with pytest.raises(ValueError, match="unknown prior"):
        replace(TINY, prior="flat")
    with pytest.raises(ValueError, match=r"mask-only arrays need N = \[150\]"):
        replace(TINY, reconstruct=reconstruct_preset("demo", arrays=("paper-vla",)))
    with pytest.raises(ValueError, match="unknown survey preset"):
        survey_preset("huge")


def test_the_multiscale_option_keys_its_own_store_and_leaves_other_keys_alone():
    """CleanConfig(multiscale=True) is part of a survey's key; without it the key's content has no such field,
    so stores made before the option still resume."""
    from ddrm.radio.baselines import CleanConfig

    plain = reconstruct_preset("demo")
    with_ms = replace(plain, clean=CleanConfig(multiscale=True))
    assert "multiscale" not in plain.content_key()["clean"]
    assert with_ms.content_key()["clean"]["multiscale"] is True
    assert plain.content_key() != with_ms.content_key()
