import math

import pytest
import torch

from ddrm.diffusion.schedule import Schedule


def f(u, s=0.008):
    return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2


@pytest.mark.parametrize("t", [0, 1, 10, 500, 900])
def test_cosine_closed_form(t):
    sch = Schedule("cosine", 1000)
    # unclipped region: ᾱ_t = f((t+1)/T) / f(0)
    assert float(sch.alpha_bar[t]) == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-10)
    assert float(sch.sigmas[t]) == pytest.approx(math.sqrt((1 - float(sch.alpha_bar[t])) / float(sch.alpha_bar[t])))


def test_cosine_last_beta_is_clipped():
    sch = Schedule("cosine", 1000)
    assert float(sch.betas[-1]) == pytest.approx(0.999)
    assert float(sch.betas.max()) <= 0.999


@pytest.mark.parametrize("t", [0, 1, 499, 999])
def test_linear_closed_form(t):
    sch = Schedule("linear", 1000)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(t + 1)]
    assert float(sch.alpha_bar[t]) == pytest.approx(math.prod(1 - b for b in betas), rel=1e-10)
    assert float(sch.betas[0]) == pytest.approx(1e-4) and float(sch.betas[-1]) == pytest.approx(0.02)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_monotone(kind):
    sch = Schedule(kind, 1000)
    assert bool((sch.alpha_bar.diff() < 0).all()) and bool((sch.sigmas.diff() > 0).all())
    assert 0 < float(sch.alpha_bar[-1]) < float(sch.alpha_bar[0]) < 1
    assert float(sch.alpha_bar_at(torch.tensor(-1))) == 1.0


def test_timesteps_edge_cases():
    sch = Schedule()
    assert sch.timesteps(1).tolist() == [0]
    assert sch.timesteps(1000).tolist() == list(range(1000))
    assert sch.timesteps(10).tolist() == list(range(0, 1000, 100))  # the reference's range(0, T, T//K)
    assert sch.timesteps(50).tolist() == list(range(0, 1000, 20))
    seq = sch.timesteps(300)  # K not dividing T still gives K distinct ascending steps
    assert len(seq) == 300 and bool((seq.diff() > 0).all()) and int(seq[-1]) < 1000
    for bad in (0, -3, 1001):
        with pytest.raises(ValueError, match="K must"):
            sch.timesteps(bad)
    with pytest.raises(ValueError, match="integer"):
        sch.timesteps(2.5)


def test_bad_schedule_and_round_trip():
    with pytest.raises(ValueError, match="unknown schedule"):
        Schedule("quadratic")
    with pytest.raises(ValueError, match="T must"):
        Schedule("cosine", 0)
    sch = Schedule("linear", 200)
    assert Schedule(**sch.to_dict()) == sch
