"""The tower-level family (model/towers.py) on synthetic towers laid on card-like calorimeter grids."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from imaging.h5schema import write_image_file
from imaging.towers import TowerSet, contributing_towers, render_towers
from model import towers as T
from model.cli import main as model_main
from model.config import TrainConfig
from model.data import load_training_data
from model.errors import ModelError
from model.families import load_model, save_model
from model.synthetic import SYNTHETIC_ECAL_ETA, synthetic_towers

TOWER_KEYS = ("offsets", "deta", "dphi", "et_ecal", "et_hcal", "edges")
SMALL = dict(family="towers", width=32, noise_dim=8, K=32, batch_size=64, epochs=2, device="cpu", seed=3)


def _towers(d: dict) -> TowerSet:
    return TowerSet(**{k: d[k] for k in TOWER_KEYS})


@pytest.fixture(scope="module")
def raw() -> dict:
    return synthetic_towers(200, seed=4)


def _data(raw: dict, shape: str):
    return T.tower_training_data(_towers(raw), raw["muon_eta"], raw["muon_phi"], raw["muon_pt"], raw["weight"],
                                 tower_shape=shape)


@pytest.fixture(scope="module")
def data(raw):
    """mixed: ECal towers drawn as points, HCal towers over their cells (both renderings)."""
    return _data(raw, "mixed")


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A small trained model of each tower_count, saved and rebuilt from model.pt."""
    models = {}
    for count in T.TOWER_COUNTS:
        result = T.train(data, TrainConfig(**SMALL, tower_count=count), None, progress=False)
        path = tmp_path_factory.mktemp("towers") / "model.pt"
        save_model(path, result, data)
        models[count] = load_model(path)[0]
    return models


@pytest.mark.parametrize("shape", ["point", "mixed"])
def test_slots_hold_every_tower_once(raw, shape):
    data = _data(raw, shape)
    slots, cells = T.slot_data(data)
    towers = data.towers
    assert slots.n_slots == cells.x.shape[1] and list(slots.calo) == sorted(slots.calo)  # ECal slots first
    assert int((cells.x != 0).sum()) == towers.n_towers  # one tower per cell: no two share a slot
    np.testing.assert_allclose(cells.x.sum(dim=1).numpy(), np.add.reduceat(
        towers.et_ecal + towers.et_hcal, towers.offsets[:-1]), rtol=1e-5)
    ecal, hcal = slots.grids
    assert set(ecal.nphi.tolist()) == {360} and set(hcal.nphi.tolist()) == {36, 72}  # measured from the towers
    np.testing.assert_allclose(np.diff(ecal.eta_edges), 0.0174, atol=2e-4)
    assert ecal.eta_edges[0] >= SYNTHETIC_ECAL_ETA[0] - 1e-3


def test_generated_images_are_render_towers_of_the_generated_towers(trained, data):
    for model in trained.values():
        towers, images = T.generate_towers(model, 300, seed=7, batch_size=128, progress=False)
        assert not towers.problems() and len(towers) == 300
        shape = data.image_attrs["tower_shape"]
        np.testing.assert_array_equal(images, render_towers(towers, tower_shape=shape, npix=32, radius=0.4))
        np.testing.assert_array_equal(T.generate(model, 300, seed=7, batch_size=128, progress=False), images)
        assert images.dtype == np.float32 and images.shape == (300, 32, 32) and (images > 0).any()


def test_generated_towers_sit_on_the_grid_within_the_data_et_range(trained, data):
    slots, cells = T.slot_data(data)
    for model in trained.values():
        towers, _ = T.generate_towers(model, 400, seed=1, progress=False)
        e = towers.edges
        assert ((towers.deta >= e[:, 0] - 1e-6) & (towers.deta <= e[:, 1] + 1e-6)).all()  # a point inside its cell
        # every generated tower is a cell of the measured grids, at a known slot, one per cell
        muons = model.fixed["muons"]
        assert len(muons["eta"]) == len(data)
        for c in range(2):  # the tower's total ET (its parts are shared as in the data)
            values = (towers.et_ecal + towers.et_hcal)[T.tower_calorimeter(towers) == c]
            lo, hi = model.fixed["et_range"][c]["min_et_gev"], model.fixed["et_range"][c]["max_et_gev"]
            assert values.size and values.min() >= lo * (1 - 1e-6) and values.max() <= hi * (1 + 1e-6)
        widths = (e[:, 1] - e[:, 0]).astype(np.float64)
        grid_widths = np.unique(np.round(np.r_[tuple(np.diff(g.eta_edges) for g in slots.grids)], 5))
        assert (np.abs(widths[:, None] - grid_widths[None, :]).min(axis=1) < 1e-4).all()


def test_generated_towers_reach_their_images_and_follow_the_counts(trained, data):
    """Only towers that put ET into the image are kept, as in the data; counts close to the data's per calorimeter."""
    shape = data.image_attrs["tower_shape"]
    real_calo = T.tower_calorimeter(data.towers)
    for count, model in trained.items():
        towers, _ = T.generate_towers(model, 1000, seed=2, progress=False)
        assert contributing_towers(towers, tower_shape=shape, npix=32, radius=0.4).all()
        calo = T.tower_calorimeter(towers)
        for c in range(2):
            real_mean = np.count_nonzero(real_calo == c) / len(data)
            assert np.count_nonzero(calo == c) / 1000 == pytest.approx(real_mean, rel=0.25), (count, c)


def test_sampling_is_seeded(trained):
    model = trained["bernoulli"]
    a = T.generate(model, 200, seed=5, progress=False)
    np.testing.assert_array_equal(a, T.generate(model, 200, seed=5, progress=False))
    assert not np.array_equal(a, T.generate(model, 200, seed=6, progress=False))


def test_multiplicity_follows_the_data_counts():
    """Count-then-place: the coupled counts follow the data's count distribution whatever the draws' sum(pi)."""
    rng = np.random.default_rng(0)
    pi = torch.from_numpy(rng.uniform(0, 0.01, (20000, 500)))
    reference = np.sort(rng.uniform(0, 0.01, (4096, 500)).sum(axis=1)).tolist()
    pmf = [0.1, 0.2, 0.4, 0.2, 0.1]
    counts = T.coupled_counts(pi, reference, pmf)
    np.testing.assert_allclose(np.bincount(counts.numpy(), minlength=5) / 20000, pmf, atol=0.015)
    # busier draws get more towers
    m = pi.sum(dim=1).numpy()
    assert np.corrcoef(m, counts.numpy())[0, 1] > 0.9


def test_training_resumes_from_its_checkpoint(data, tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 2})
    straight = T.train(data, cfg, None, progress=False)
    T.train(data, TrainConfig(**{**SMALL, "epochs": 1}), tmp_path, progress=False)
    resumed = T.train(data, cfg, tmp_path, progress=False)
    assert resumed.resumed_from_epoch == 1
    for name, module in straight.modules.items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(resumed.modules[name].state_dict()[key], value, rtol=0, atol=0)


def test_towers_family_needs_towers(raw):
    data = T.tower_training_data(_towers(raw), raw["muon_eta"], raw["muon_phi"], raw["muon_pt"], raw["weight"])
    data.towers = None
    with pytest.raises(ModelError, match="no /towers"):
        T.train(data, TrainConfig(**SMALL), None, progress=False)
    with pytest.raises(ModelError, match="tower_count"):
        TrainConfig.from_mapping({**SMALL, "tower_count": "poisson"})


def test_cli_trains_and_samples_a_towers_model(raw, tmp_path):
    """`python -m model train|sample` on an images.h5 with /towers (schema 2), as the workflow runs it."""
    towers = _towers(raw)
    images = render_towers(towers, tower_shape="mixed", npix=32, radius=0.4)
    real = write_image_file(tmp_path / "images.h5", images, raw["muon_pt"], raw["weight"], muon_eta=raw["muon_eta"],
                            muon_phi=raw["muon_phi"], sample="signal", radius=0.4, towers=towers,
                            extra_attrs={"tower_shape": "mixed", "quantity": "et"})
    settings = ('{"models": {"towers_cells": {"arch": "fc", "family": "towers", "tower_count": "multiplicity", '
                '"width": 32, "noise_dim": 8, "K": 32, "epochs": 1, "device": "cpu"}}, "n_generated": 50}')
    common = ["--model-name", "towers_cells", "--sample", "signal", "--seed", "1", "--config-json", settings,
              "--no-progress"]
    assert model_main(["train", "--in", str(real), "--out", str(tmp_path / "model.pt"), *common]) == 0
    assert model_main(["sample", "--model", str(tmp_path / "model.pt"), "--out", str(tmp_path / "gen.h5"),
                       *common]) == 0
    gen = load_training_data(tmp_path / "gen.h5")
    assert len(gen) == 50
    model, record = load_model(tmp_path / "model.pt")
    assert record["family"] == "towers" and record["fixed"]["image"]["tower_shape"] == "mixed"


def test_generator_is_conditioned_on_the_hcal_context(trained, data):
    """The slot generator takes a one-hot context: generated for one context, the HCal slots of the others are off."""
    model = trained["bernoulli"]
    slots, contexts = model.slots, model.contexts
    assert contexts.size >= 2 and model.generator.spec.n_contexts == contexts.size
    noise = torch.randn(64, model.generator.spec.noise_dim, generator=torch.Generator().manual_seed(0))
    outs = []
    for c, value in enumerate(contexts):
        with torch.no_grad():
            logits, _ = model.generator(noise, torch.full((64,), c))
        pi = torch.sigmoid(logits).numpy()
        other = (slots.calo == 1) & (slots.ctx != value)
        assert other.any() and pi[:, other].max() < 1e-12  # no tower in a cell of another context's grid
        own = (slots.calo == 1) & (slots.ctx == value)
        assert pi[:, own].max() > 1e-4 and pi[:, slots.calo == 0].max() > 1e-4
        outs.append(logits[:, slots.calo == 0])
    assert not torch.equal(outs[0], outs[1])  # the condition changes the ECal slots too


def test_sampling_draws_the_muon_then_its_context(trained, data):
    """Images of a context get that context's HCal towers at the data's rate; the same seed, the same towers."""
    model = trained["bernoulli"]
    n, rng = 4000, torch.Generator().manual_seed(3)
    noise = torch.randn(n, model.generator.spec.noise_dim, generator=rng)
    state = rng.get_state()
    towers = T.draw_towers(model, noise, rng)
    assert len(towers) == n
    # the muon of each image: draw_towers' first draw from the stream, a weighted training muon
    u = torch.rand(n, generator=torch.Generator().set_state(state), dtype=torch.float64).numpy()
    cdf = np.cumsum(model.muon_weight)
    ctx = model.muon_context[np.searchsorted(cdf / cdf[-1], u, side="right").clip(max=cdf.size - 1)]
    gen_hcal = np.bincount(towers.image_index(), weights=T.tower_calorimeter(towers) == 1, minlength=n)
    real_ctx = model.muon_context  # the training muons, in the data's order
    real_hcal = np.bincount(data.towers.image_index(), weights=T.tower_calorimeter(data.towers) == 1,
                            minlength=len(data))
    for c in range(model.contexts.size):
        if np.count_nonzero(real_ctx == c) < 50:
            continue
        assert gen_hcal[ctx == c].mean() == pytest.approx(real_hcal[real_ctx == c].mean(), rel=0.3), c
    rng2 = torch.Generator().manual_seed(3)
    again = T.draw_towers(model, torch.randn(n, model.generator.spec.noise_dim, generator=rng2), rng2)
    np.testing.assert_array_equal(again.et_hcal, towers.et_hcal)
    np.testing.assert_array_equal(again.edges, towers.edges)


def test_tower_et_follows_the_data_quantiles(trained, data):
    """After the ET map the tower ET of each calorimeter, in the cone and around it, follows the data's spectrum,
    within the data's range; the map is monotone within each of these groups."""
    real_group = T.tower_group(data.towers, T.COPULA_CONE)
    real_et = data.towers.et_ecal + data.towers.et_hcal
    for model in trained.values():
        towers, _ = T.generate_towers(model, 3000, seed=4, progress=False)
        group = T.tower_group(towers, T.COPULA_CONE)
        et = towers.et_ecal + towers.et_hcal
        for c in range(2):
            real, gen = real_et[real_group // 2 == c], et[group // 2 == c]
            assert gen.min() >= real.min() * (1 - 1e-6) and gen.max() <= real.max() * (1 + 1e-6)
        for g in range(len(T.COPULA_GROUPS)):
            real, gen = real_et[real_group == g], et[group == g]
            if real.size < T.ET_MAP_MIN_TOWERS:  # mapped with its calorimeter's spectrum
                continue
            for q in (0.25, 0.5, 0.75):
                assert np.quantile(gen, q) == pytest.approx(np.quantile(real, q), rel=0.2), (g, q)
        unmapped, _ = T.generate_towers(model, 300, seed=4, progress=False, match_et=False, render_images=False)
        mapped, _ = T.generate_towers(model, 300, seed=4, progress=False, render_images=False)
        np.testing.assert_array_equal(unmapped.edges, mapped.edges)  # the map changes ET only, monotonically
        group = T.tower_group(unmapped, T.COPULA_CONE)
        u, m = unmapped.et_ecal + unmapped.et_hcal, mapped.et_ecal + mapped.et_hcal
        for g in range(len(T.COPULA_GROUPS)):  # monotone within each group
            order = np.argsort(u[group == g], kind="stable")
            assert (np.diff(m[group == g][order]) >= -1e-5).all()


def test_an_old_unconditional_record_asks_to_be_retrained(trained, data, tmp_path):
    result = T.train(data, TrainConfig(**{**SMALL, "epochs": 1}), None, progress=False)
    path = tmp_path / "model.pt"
    save_model(path, result, data)
    record = torch.load(path, weights_only=False)
    old = {**record, "format": "sparse-muon-towers-model/1"}
    old["fixed"] = {k: v for k, v in record["fixed"].items() if k not in ("contexts", "et_quantiles")}
    old["fixed"]["generator_spec"] = {k: v for k, v in record["fixed"]["generator_spec"].items() if k != "n_contexts"}
    with pytest.raises(ModelError, match="retrain"):
        T.rebuild(old)
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ModelError, match="retrain"):
        load_model(tmp_path / "old.pt")


def test_region_copula_keeps_each_cell_and_spreads_the_counts(trained):
    """The copula: each uniform stays uniform (every cell keeps its chance), the counts of a region spread with its
    loading, and the two regions' factors are independent."""
    group = np.r_[np.zeros(200, np.int64), np.ones(200, np.int64), np.full(100, 2), np.full(100, 3)]
    p = torch.full((20000, 600), 0.02)
    factors = torch.randn(20000, 2, generator=torch.Generator().manual_seed(2))
    variances, counts = [], None
    for loadings in ([0.0] * 4, [0.3, 0.0, 0.6, 0.0]):
        u = T.copula_uniforms(loadings, group, factors, torch.Generator().manual_seed(1))
        assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float((u < 0.02).float().mean()) - 0.02) < 0.001
        counts = torch.stack([(u[:, group == g] < p[:, group == g]).sum(dim=1).double() for g in range(4)], dim=1)
        variances.append(counts.var(dim=0))
    assert variances[1][0] > 1.5 * variances[0][0] and variances[1][2] > 1.5 * variances[0][2]
    assert variances[1][1] == pytest.approx(float(variances[0][1]), rel=0.1)  # loading 0: binomial 200 * 0.02 * 0.98
    assert float(variances[0][1]) == pytest.approx(200 * 0.02 * 0.98, rel=0.1)
    cone_ecal, ring_ecal, cone_hcal = counts[:, 0], counts[:, 1], counts[:, 2]
    assert float(torch.corrcoef(torch.stack([cone_ecal, cone_hcal]))[0, 1]) > 0.05  # one factor per region
    assert abs(float(torch.corrcoef(torch.stack([cone_ecal, ring_ecal]))[0, 1])) < 0.03
    for model in trained.values():
        copula = model.fixed["copula"]
        assert copula["cone"] == T.COPULA_CONE
        assert all(0.0 <= r < 0.95 for part in ("count", "et") for r in copula[part])
    assert trained["multiplicity"].fixed["copula"]["count"] == [0.0] * 4  # count-then-place draws the data's counts


@pytest.mark.parametrize("count", T.TOWER_COUNTS)
def test_fitted_copula_gives_the_data_spread_of_counts_and_et_per_region(trained, data, count):
    """After the fit, each group's variance over images of the tower count (bernoulli) and of the summed ET is the
    data's within the Monte Carlo error; where the largest loading cannot reach it, closer than independent draws."""
    model = trained[count]
    real = T.group_moments(data.towers, data.weight.numpy(), T.COPULA_CONE)
    copula = model.fixed["copula"]
    fitted = {part: list(copula[part]) for part in ("count", "et")}

    def variances() -> tuple[np.ndarray, np.ndarray]:
        towers, _ = T.generate_towers(model, 8000, seed=11, progress=False, render_images=False)
        return tuple(v.var(axis=0) for v in T.group_sums(towers, T.COPULA_CONE))

    try:
        n_var, et_var = variances()
        copula["count"], copula["et"] = [0.0] * 4, [0.0] * 4
        n_indep, et_indep = variances()
    finally:
        copula.update(fitted)
    parts = [("et", et_var, et_indep)] + ([("count", n_var, n_indep)] if count == "bernoulli" else [])
    assert any(v > 0 for part, _, _ in parts for v in fitted[part])  # the synthetic towers are correlated
    for part, var, indep in parts:
        for g, loading in enumerate(fitted[part]):
            where = (part, T.COPULA_GROUPS[g], loading, var[g], indep[g], real[part][g])
            if loading == 0:  # independent draws already spread the group as much as the data
                assert indep[g] >= 0.75 * real[part][g], where
            elif loading < 0.9 * T.COPULA_MAX_LOADING:
                assert var[g] == pytest.approx(real[part][g], rel=0.25), where
            else:  # the largest loading: as close as it gets
                assert indep[g] < var[g] < 1.25 * real[part][g], where


def test_tower_et_is_shared_between_the_parts_as_in_the_data(trained, data):
    """Generated towers get an ECal and an HCal part with the data's share in the dominant one; totals are kept."""
    real = T.dominant_fraction_quantiles(data.towers)
    model = trained["bernoulli"]
    towers, _ = T.generate_towers(model, 2000, seed=9, progress=False)
    e, h = towers.et_ecal.astype(np.float64), towers.et_hcal.astype(np.float64)
    calo = T.tower_calorimeter(towers)
    share = np.where(calo == 1, h, e) / (e + h)
    for c in range(2):  # the lowest ET bin holds half the towers: its median share
        low = (calo == c) & ((e + h) < real["et_edges"][c][0])
        assert np.median(share[low]) == pytest.approx(real["quantiles"][c][0][50], abs=0.05)
    split = T.split_tower_et(towers, real, np.random.default_rng(0).random(towers.n_towers))
    np.testing.assert_allclose(split.et_ecal + split.et_hcal, e + h, rtol=1e-5)
    np.testing.assert_array_equal(T.tower_calorimeter(split), calo)
