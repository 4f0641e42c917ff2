"""Prior training: real Ray Train (TorchTrainer, DDP on CPU), real Prefect, real zarr.

Training on a multi-node cluster from an S3 dataset, with checkpoints on S3 and a Ray Train worker
killed by SIGKILL (FailureConfig restart from the last checkpoint), is in tests/test_cluster.py."""

from dataclasses import replace

import pytest
import ray
import torch
from prefect import flow

from configs import prepare_preset, train_preset
from ddrm.diffusion.ddpm import EpsDenoiser
from ddrm.diffusion.training import OptimConfig, augment, lr_at
from ddrm.diffusion.unet import UNet, UNetConfig
from flows.prepare import prepare_dataset
from flows.train import train_prior
from runtime.ray_cluster import InsufficientResourcesError, plan_workers
from stores.checkpoints import list_checkpoints, load_prior, read_meta, read_state
from tasks.train import fit_prior, plan_training, read_history
from tests.faults import faulty_train_loop

MICRO = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), norm_groups=4)
TINY_TRAIN = train_preset("demo", name="t", unet=MICRO, batch_size=8, report_every=2, checkpoint_every=4,
                          optim=OptimConfig(steps=8, lr=2e-3, warmup_steps=1, ema_decay=0.5), max_failures=0)
DATA = prepare_preset("demo", name="train-data", N=16, n_images=64, shard_size=64, chunk_images=16)


@pytest.fixture(scope="module")
def dataset(prefect_harness, tmp_path_factory):
    return prepare_dataset(DATA, root=str(tmp_path_factory.mktemp("run")))


def test_lr_schedule_closed_form():
    cfg = OptimConfig(steps=110, lr=1.0, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.5) and lr_at(110, cfg) == pytest.approx(0.0, abs=1e-12)


def test_augment_is_a_dihedral_symmetry_with_shifts():
    x = torch.rand(16, 1, 8, 8)
    y = augment(x, torch.Generator().manual_seed(0), max_shift=2)
    for a, b in zip(x, y):  # same pixel multiset: a permutation of pixels
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), 0),
                       augment(x, torch.Generator().manual_seed(0), 0))


TRAINED = replace(TINY_TRAIN, num_workers=2, optim=replace(TINY_TRAIN.optim, steps=24), checkpoint_every=8,
                  report_every=4)  # each report is a Ray Train round trip of about 1 s


@pytest.fixture(scope="module")
def trained(ray_session, dataset, tmp_path_factory) -> tuple[str, str, list[int]]:
    """One 24-step DDP run on 2 workers (checkpoints every 8 steps), interrupted first: the first attempt
    raises at step 10, after its step-8 checkpoint, and a rerun of the flow continues. Returns
    (final checkpoint, root, the checkpoint steps the interrupted attempt left)."""
    root = tmp_path_factory.mktemp("trained")

    @flow
    def interrupted() -> None:
        plan = plan_training(TRAINED, dataset, str(root))
        fit_prior(TRAINED, plan, dataset)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tasks.train.train_loop_per_worker", faulty_train_loop(10, str(root / "fault")))
        with pytest.raises(Exception, match="injected fault"):
            interrupted()
    left = [s for s, _ in list_checkpoints(f"{root}/priors/{_only_run(root)}")]
    return train_prior(dataset, TRAINED, root=str(root)), str(root), left


def test_train_workers_loss_falls_and_metrics_return(trained):
    checkpoint, _, _ = trained
    history = read_history(str(checkpoint).rsplit("/", 1)[0])
    assert [r["step"] for r in history] == list(range(4, 25, 4))
    assert all(r["world_size"] == 2 and r["samples_per_s"] > 0 for r in history)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert read_meta(checkpoint).step == 24
    kept = [s for s, _ in list_checkpoints(checkpoint.rsplit("/", 1)[0])]
    assert kept[-2:] == [16, 24]  # keep_checkpoints = 2 (of this run; the interrupted one left step 8)


def test_checkpoint_loads_weights_only_and_reproduces_the_denoiser(trained, dataset):
    checkpoint, root, _ = trained
    state = read_state(checkpoint)  # weights_only=True inside
    assert set(state) == {"model", "ema", "optimizer", "step"} and state["step"] == 24
    prior = load_prior(checkpoint, torch.device("cpu"))
    manual = UNet(MICRO)
    manual.load_state_dict(state["ema"])
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([10, 500])
    loaded = EpsDenoiser(prior.model, prior.schedule)(x, t)
    # the loaded prior is channels-last (the convolutions' fastest layout): bit for bit in that layout, and
    # equal to float32 rounding in the default one
    same_layout = EpsDenoiser(UNet(MICRO).to(memory_format=torch.channels_last).eval(), prior.schedule)
    same_layout.model.load_state_dict(state["ema"])
    torch.testing.assert_close(loaded, same_layout(x, t), rtol=0, atol=0)
    torch.testing.assert_close(loaded, EpsDenoiser(manual.eval(), prior.schedule)(x, t), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="U-Net config differs.*base_channels"):
        load_prior(checkpoint, torch.device("cpu"), expect_unet=replace(MICRO, base_channels=16))
    with pytest.raises(ValueError, match="schedule config differs"):
        load_prior(checkpoint, torch.device("cpu"), expect_schedule=replace(prior.schedule, kind="linear"))
    assert train_prior(dataset, replace(TRAINED, num_workers=1), root=root) == checkpoint  # reused


def test_interrupted_training_resumes_from_its_checkpoint(trained):
    checkpoint, _, left = trained
    assert left == [8]  # the interrupted attempt's last checkpoint
    history = read_history(checkpoint.rsplit("/", 1)[0])
    assert {r["start_step"] for r in history if r["step"] <= 8} == {0}  # its rows kept
    assert {r["start_step"] for r in history if r["step"] > 8} == {8}  # resumed, not restarted
    assert read_meta(checkpoint).step == 24


def _only_run(tmp_path) -> str:
    (run,) = [p.name for p in (tmp_path / "priors").iterdir() if p.is_dir()]
    return run


def test_asking_for_more_workers_than_fit_fails_fast(ray_session):
    free = int(ray.available_resources().get("CPU", 0))
    with pytest.raises(InsufficientResourcesError, match=f"asked for {free + 1} training workers"):
        plan_workers(free + 1, 1, False, "training workers")
    with pytest.raises(InsufficientResourcesError, match="no GPUs"):
        plan_workers(1, 1, True)
    assert plan_workers(None, 1, None) == (free, False)


def test_the_scale_augmentation_conserves_flux_and_is_seeded():
    """``paste_shrunk`` keeps Σ sky exactly; ``shrink`` keeps each image's peak (the prior's images are
    peak-normalised), draws the same shapes from the same seed and others from another, and leaves the images
    alone at prob 0."""
    from ddrm.diffusion.training import paste_shrunk, shrink

    g = torch.Generator().manual_seed(0)
    x = torch.full((6, 1, 48, 48), -1.0)
    x[:, :, 10:38, 14:30] = torch.rand(6, 1, 28, 16, generator=g) * 2 - 1
    sky = (x[0] + 1) / 2
    for m in (3, 10, 47):
        pasted = paste_shrunk(sky, m, 48 - m, 0)
        assert float(pasted.sum()) == pytest.approx(float(sky.sum()), rel=1e-6)
        assert int((pasted[..., :48 - m, :] != 0).sum()) == 0  # nothing outside the pasted window
    a = shrink(x, torch.Generator().manual_seed(1), 0.1, 1.0)
    assert torch.equal(a, shrink(x, torch.Generator().manual_seed(1), 0.1, 1.0))
    assert not torch.equal(a, shrink(x, torch.Generator().manual_seed(2), 0.1, 1.0))
    assert torch.allclose(a.amax((1, 2, 3)), x.amax((1, 2, 3)))
    assert (((a + 1) / 2 > 1e-6).sum((1, 2, 3)) < ((x + 1) / 2 > 1e-6).sum((1, 2, 3))).all()  # smaller sources
    assert torch.equal(shrink(x, torch.Generator().manual_seed(1), 0.1, 0.0), x)
    with pytest.raises(ValueError):
        shrink(x, g, 0.0, 0.5)
