"""The Pythia shower card of the container backend, read by the real Pythia 8."""
from __future__ import annotations

import pytest

from simulation.container import cards
from simulation.container.errors import ContainerCardError
from simulation.container.shower import configure_pythia
from simulation.pythia_setup import read_cmnd


def _render(tmp_path, sample, **kw):
    card = tmp_path / f"{sample}.cmnd"
    card.write_text(cards.shower_card(sample, lhe=str(tmp_path / "in.lhe"), hepmc=str(tmp_path / "out.hepmc"),
                                      seed=kw.pop("seed", 4242), n_events=kw.pop("n_events", 77), **kw))
    return card


@pytest.mark.parametrize("sample", cards.SAMPLES)
def test_pythia_reads_the_card_as_mg5amc_py8_interface_does(tmp_path, sample):
    pythia = configure_pythia(_render(tmp_path, sample))   # every line accepted (typos fail here)
    assert pythia.mode("Beams:frameType") == 4
    assert pythia.word("Beams:LHEF") == str(tmp_path / "in.lhe")
    assert pythia.word("HEPMCoutput:file") == str(tmp_path / "out.hepmc")
    assert pythia.mode("Random:seed") == 4242 and pythia.flag("Random:setSeed")
    assert pythia.mode("Main:numberOfEvents") == 77
    assert pythia.mode("Tune:pp") == 14            # the native backend's tune (common.cmnd)


@pytest.mark.parametrize("sample", cards.SAMPLES)
def test_card_contains_every_native_shared_setting(tmp_path, sample):
    text = _render(tmp_path, sample).read_text()
    native = [cards.CARDS_DIR / "common.cmnd"]
    if sample == "background":
        native.append(cards.CARDS_DIR / "force_b_muonic.cmnd")
    for card in native:
        for _, setting in read_cmnd(card):
            assert setting in text, f"{setting} of {card.name} missing from the {sample} shower card"
    # the native hard-process cards are not in it: the hard process comes from MadGraph
    for _, setting in read_cmnd(cards.CARDS_DIR / f"{sample}.cmnd"):
        assert setting not in text


def test_forced_muonic_b_decays_follow_the_switch(tmp_path):
    def muonic_fraction(pythia) -> float:
        channels = pythia.particleData.particleDataEntryPtr(511)
        on = [channels.channel(i) for i in range(channels.sizeChannels()) if channels.channel(i).onMode() > 0]
        with_mu = [c for c in on if any(abs(c.product(j)) == 13 for j in range(c.multiplicity()))]
        return len(with_mu) / len(on)

    forced = configure_pythia(_render(tmp_path, "background"))
    assert muonic_fraction(forced) == 1.0
    (tmp_path / "off").mkdir()
    unforced = configure_pythia(_render(tmp_path / "off", "background", force_muonic_b_decays=False))
    assert muonic_fraction(unforced) < 0.5


def test_bad_run_values_are_refused(tmp_path):
    with pytest.raises(ContainerCardError, match="seed"):
        _render(tmp_path, "signal", seed=0)
    with pytest.raises(ContainerCardError, match="n_events"):
        _render(tmp_path, "signal", n_events=-1)
    with pytest.raises(ContainerCardError, match="unknown sample"):
        cards.shower_card("ttbar", "a.lhe", "b.hepmc", 1, 1)
    broken = tmp_path / "broken.cmnd"
    broken.write_text(_render(tmp_path, "signal").read_text().replace("Beams:frameType = 4", "Beams:frameType = 1"))
    with pytest.raises(ContainerCardError, match="frameType"):
        configure_pythia(broken)
