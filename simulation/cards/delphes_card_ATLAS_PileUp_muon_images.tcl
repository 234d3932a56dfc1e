#######################################################################################
# Delphes card of the muon-image pipeline (simulation/cards): variant `atlas`.
#
# Derived from Delphes 3.5.1 cards/delphes_card_ATLAS_PileUp.tcl (ATLAS detector, Bz = 2 T,
# pile-up mixed in by PileUpMerger, mean mu = 50, Poisson), adapted exactly as the project's
# CMS card (delphes_card_CMS_PileUp_muon_images.tcl) adapts the CMS one. Every change is
# marked "CHANGED:"; the modules kept are otherwise copied from the stock ATLAS card.
#
# Calorimeter: ATLAS' single combined calorimeter, towers of 0.1 (eta) x 10 degrees (phi),
# ECal and HCal parts each kept above 1 sigma of their resolution (the stock ATLAS choice).
# Changes, in short:
#   - Tower branch written (Calorimeter/towers); muons kept regardless of isolation.
#   - CentralParticles (|eta| < 3.5) added before propagation, as in the CMS card.
#   - Dropped (not used by the pipeline): charged-hadron and electron tracking, track
#     smearing, e-flow mergers, jets, MET, photons, electrons, b/tau tagging.
# simulation/delphes.py fills in per run: PileUpFile, MeanPileUp and RandomSeed.
#######################################################################################

# CHANGED: added. Seed of ROOT's gRandom (smearing, efficiencies, pile-up draws);
# 0 would mean "random from the clock". Filled in per chunk by simulation/delphes.py.
set RandomSeed 1

#######################################
# Order of execution of various modules
#######################################

# CHANGED: trimmed to the modules that make towers and identified muons (see header).
set ExecutionPath {

  PileUpMerger
  CentralParticles
  ParticlePropagator

  MuonTrackingEfficiency
  MuonMomentumSmearing

  Calorimeter

  TrackPileUpSubtractor
  MuonEfficiency
  MuonIsolation

  TreeWriter
}

###############
# PileUp Merger
###############

module PileUpMerger PileUpMerger {
  set InputArray Delphes/stableParticles

  set ParticleOutputArray stableParticles
  set VertexOutputArray vertices

  # pre-generated minbias input file
  # CHANGED: path filled in per run by simulation/delphes.py (render_card) with the
  # library made by `python -m simulation pileup` (Pythia 8 SoftQCD -> hepmc2pileup)
  set PileUpFile MinBias.pileup

  # average expected pile up (Poisson: PileUpDistribution default 0)
  # UNCHANGED default 50 (the paper's mu); config simulation.mean_pileup overrides it per run
  set MeanPileUp 50

   # maximum spread in the beam direction in m
  set ZVertexSpread 0.25

  # maximum spread in time in s
  set TVertexSpread 800E-12

  # vertex smearing formula f(z,t) (z,t need to be respectively given in m,s)
  set VertexDistributionFormula {exp(-(t^2/160e-12^2/2))*exp(-(z^2/0.053^2/2))}


}

#########################################################
# Central particles only (|eta| of the momentum < 3.5)
#########################################################

# CHANGED: added (not in the stock card). Images need towers within |eta| < 2.4 + 0.4;
# about half of the pile-up particles fly further forward and cost propagation and
# calorimeter time for nothing. A particle from the beam line reaches the calorimeter
# at a position |eta| >= its momentum |eta| (the transverse distance travelled is at most
# the transverse arc length), so dropping momentum |eta| > 3.5 changes no tower with
# |eta| < ~3.4: the Tower branch is complete there and empty beyond. Efficiency 1 or 0.
module Efficiency CentralParticles {
  set InputArray PileUpMerger/stableParticles
  set OutputArray stableParticles
  set UseMomentumVector true
  set EfficiencyFormula {(abs(eta) < 3.5) * 1.0}
}

#################################
# Propagate particles in cylinder
#################################

module ParticlePropagator ParticlePropagator {
  # CHANGED: input from CentralParticles (stock: PileUpMerger/stableParticles)
  set InputArray CentralParticles/stableParticles

  set OutputArray stableParticles
  set ChargedHadronOutputArray chargedHadrons
  set ElectronOutputArray electrons
  set MuonOutputArray muons

  # radius of the magnetic field coverage, in m
  set Radius 1.15
  # half-length of the magnetic field coverage, in m
  set HalfLength 3.51

  # magnetic field (ATLAS solenoid: 2 T)
  set Bz 2.0
}

##########################
# Muon tracking efficiency
##########################

module Efficiency MuonTrackingEfficiency {
  set InputArray ParticlePropagator/muons
  set OutputArray muons

  # set EfficiencyFormula {efficiency formula as a function of eta and pt}

  # tracking efficiency formula for muons
  set EfficiencyFormula {
            (pt <= 0.5)   * (0.00) +
            (abs(eta) <= 1.5) * (pt > 0.5   && pt <= 5.0)   * (0.85) +
            (abs(eta) <= 1.5) * (pt > 5.0)                  * (0.90) +
            (abs(eta) > 1.5 && abs(eta) <= 2.5) * (pt > 0.5   && pt <= 5.0)   * (0.75) +
            (abs(eta) > 1.5 && abs(eta) <= 2.5) * (pt > 5.0)                  * (0.80) +
            (abs(eta) > 2.5)                                                  * (0.00)}
}

###############################
# Momentum resolution for muons
###############################

module MomentumSmearing MuonMomentumSmearing {
  set InputArray MuonTrackingEfficiency/muons
  set OutputArray muons

  # set ResolutionFormula {resolution formula as a function of eta and pt}

  # resolution formula for muons
  set ResolutionFormula {                  (abs(eta) <= 0.5) * (pt > 0.1) * sqrt(0.01^2 + pt^2*1.0e-4^2) +
                         (abs(eta) > 0.5 && abs(eta) <= 1.5) * (pt > 0.1) * sqrt(0.015^2 + pt^2*1.5e-4^2) +
                         (abs(eta) > 1.5 && abs(eta) <= 2.5) * (pt > 0.1) * sqrt(0.025^2 + pt^2*3.5e-4^2)}
}

#############
# Calorimeter
#############

# As the stock ATLAS card: one combined calorimeter, towers of 0.1 x 10 degrees carrying
# both an ECal (Eem) and an HCal (Ehad) part, each kept above 1 sigma of its resolution.
module Calorimeter Calorimeter {
  set ParticleInputArray ParticlePropagator/stableParticles
  # CHANGED: stock TrackSmearing/tracks (all charged tracks). Tracks only feed the e-flow
  # outputs, never the tower energies written here: only muon tracks are given.
  set TrackInputArray MuonMomentumSmearing/muons

  set TowerOutputArray towers
  set PhotonOutputArray photons

  set EFlowTrackOutputArray eflowTracks
  set EFlowPhotonOutputArray eflowPhotons
  set EFlowNeutralHadronOutputArray eflowNeutralHadrons

  set ECalEnergyMin 0.5
  set HCalEnergyMin 1.0

  set ECalEnergySignificanceMin 1.0
  set HCalEnergySignificanceMin 1.0

  set SmearTowerCenter true

  set pi [expr {acos(-1)}]

  # lists of the edges of each tower in eta and phi
  # each list starts with the lower edge of the first tower
  # the list ends with the higher edged of the last tower

  # 10 degrees towers
  set PhiBins {}
  for {set i -18} {$i <= 18} {incr i} {
    add PhiBins [expr {$i * $pi/18.0}]
  }
  foreach eta {-3.2 -2.5 -2.4 -2.3 -2.2 -2.1 -2 -1.9 -1.8 -1.7 -1.6 -1.5 -1.4 -1.3 -1.2 -1.1 -1 -0.9 -0.8 -0.7 -0.6 -0.5 -0.4 -0.3 -0.2 -0.1 0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1 1.1 1.2 1.3 1.4 1.5 1.6 1.7 1.8 1.9 2 2.1 2.2 2.3 2.4 2.5 2.6 3.3} {
    add EtaPhiBins $eta $PhiBins
  }

  # 20 degrees towers
  set PhiBins {}
  for {set i -9} {$i <= 9} {incr i} {
    add PhiBins [expr {$i * $pi/9.0}]
  }
  foreach eta {-4.9 -4.7 -4.5 -4.3 -4.1 -3.9 -3.7 -3.5 -3.3 -3 -2.8 -2.6 2.8 3 3.2 3.5 3.7 3.9 4.1 4.3 4.5 4.7 4.9} {
    add EtaPhiBins $eta $PhiBins
  }

  # default energy fractions {abs(PDG code)} {Fecal Fhcal}
  add EnergyFraction {0} {0.0 1.0}
  # energy fractions for e, gamma and pi0
  add EnergyFraction {11} {1.0 0.0}
  add EnergyFraction {22} {1.0 0.0}
  add EnergyFraction {111} {1.0 0.0}
  # energy fractions for muon, neutrinos and neutralinos
  add EnergyFraction {12} {0.0 0.0}
  add EnergyFraction {13} {0.0 0.0}
  add EnergyFraction {14} {0.0 0.0}
  add EnergyFraction {16} {0.0 0.0}
  add EnergyFraction {1000022} {0.0 0.0}
  add EnergyFraction {1000023} {0.0 0.0}
  add EnergyFraction {1000025} {0.0 0.0}
  add EnergyFraction {1000035} {0.0 0.0}
  add EnergyFraction {1000045} {0.0 0.0}
  # energy fractions for K0short and Lambda
  add EnergyFraction {310} {0.3 0.7}
  add EnergyFraction {3122} {0.3 0.7}

  # set ECalResolutionFormula {resolution formula as a function of eta and energy}
  set ECalResolutionFormula {                  (abs(eta) <= 3.2) * sqrt(energy^2*0.0017^2 + energy*0.101^2) +
                             (abs(eta) > 3.2 && abs(eta) <= 4.9) * sqrt(energy^2*0.0350^2 + energy*0.285^2)}

  # set HCalResolutionFormula {resolution formula as a function of eta and energy}
  set HCalResolutionFormula {                  (abs(eta) <= 1.7) * sqrt(energy^2*0.0302^2 + energy*0.5205^2 + 1.59^2) +
                             (abs(eta) > 1.7 && abs(eta) <= 3.2) * sqrt(energy^2*0.0500^2 + energy*0.706^2) +
                             (abs(eta) > 3.2 && abs(eta) <= 4.9) * sqrt(energy^2*0.09420^2 + energy*1.00^2)}
}

##################################
# Track pile-up subtractor (muons)
##################################

module TrackPileUpSubtractor TrackPileUpSubtractor {
# add InputArray InputArray OutputArray
  # CHANGED: only the muons pass here (e-flow tracks and electrons are not used);
  # as in the stock card, muons from pile-up vertices are removed before MuonEfficiency.
  add InputArray MuonMomentumSmearing/muons muons

  set VertexInputArray PileUpMerger/vertices
  # assume perfect pile-up subtraction for tracks with |z| > fZVertexResolution
  # Z vertex resolution in m
  set ZVertexResolution {0.0001}
}

#################
# Muon efficiency
#################

module Efficiency MuonEfficiency {
  set InputArray TrackPileUpSubtractor/muons
  set OutputArray muons

  # set EfficiencyFormula {efficiency as a function of eta and pt}

  # efficiency formula for muons
  set EfficiencyFormula {                                      (pt <= 10.0) * (0.00) +
                                           (abs(eta) <= 1.5) * (pt > 10.0)  * (0.95) +
                         (abs(eta) > 1.5 && abs(eta) <= 2.7) * (pt > 10.0)  * (0.85) +
                         (abs(eta) > 2.7)                                   * (0.00)}
}

##########################################
# Muon isolation (computed, never applied)
##########################################

module Isolation MuonIsolation {
  set CandidateInputArray MuonEfficiency/muons
  # CHANGED: isolation from calorimeter towers (what the images are made of) instead of
  # e-flow, and no rho correction (the Rho/FastJet modules are dropped). IsolationVar is
  # kept as a cross-check only: see PTRatioMax below.
  set IsolationInputArray Calorimeter/towers

  set OutputArray muons

  # CHANGED: 0.5 -> 0.4, the image radius
  set DeltaRMax 0.4

  set PTMin 0.5

  # CHANGED: stock 0.25 drops non-isolated muons - the whole b bbar sample. A huge
  # ratio keeps every identified muon (the selection is the images' business).
  set PTRatioMax 1.0e9
}

##################
# ROOT tree writer
##################

# CHANGED: only the branches the pipeline reads (stock: GenParticle, jets, electrons,
# photons, MET, HT, rho, vertices). Event and Weight come from DelphesHepMC2 itself.
module TreeWriter TreeWriter {
# add Branch InputArray BranchName BranchClass
  add Branch Calorimeter/towers Tower Tower
  add Branch MuonIsolation/muons Muon Muon
}
