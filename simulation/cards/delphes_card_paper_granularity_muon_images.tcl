#######################################################################################
# Delphes card of the muon-image pipeline (simulation/cards): variant `paper_granularity`.
#
# The granularity of the paper's images: separate ECal towers of 0.025 (eta) x pi/126 (phi)
# - exactly one 32 x 32 image pixel of 0.8 / 32 - and HCal towers of 0.1 x pi/31, as the
# paper's group used for calorimeter images of the same period; ATLAS-like resolutions and
# geometry (Bz = 2 T) from Delphes 3.5.1 cards/delphes_card_ATLAS_PileUp.tcl, thresholds at
# 1 sigma (significance 1.0) for both. Every change from the ATLAS pile-up card is marked
# "CHANGED:". Towers carry Eem (ECal) or Ehad (HCal) and Tower.Edges, so imaging can draw
# ECal towers as points and HCal towers over their cells (imaging.tower_shape: mixed).
# Otherwise adapted as the project's CMS card: Tower branch written, muons kept regardless
# of isolation, CentralParticles (|eta| < 3.5), unused modules dropped.
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

  ECal
  HCal
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

######
# ECal
######

# CHANGED: a SimpleCalorimeter of its own with cells of 0.025 x pi/126 (exactly one image
# pixel: 0.8 / 32 = 0.025), ATLAS ECal resolution. Tracks only feed e-flow outputs: muons only.
module SimpleCalorimeter ECal {
  set ParticleInputArray ParticlePropagator/stableParticles
  set TrackInputArray MuonMomentumSmearing/muons

  set TowerOutputArray ecalTowers
  set EFlowTrackOutputArray eflowTracks
  set EFlowTowerOutputArray eflowPhotons

  set IsEcal true

  set EnergyMin 0.5
  # CHANGED: significance 1.0 as in the ATLAS card
  set EnergySignificanceMin 1.0

  set SmearTowerCenter true

  set pi [expr {acos(-1)}]

  # lists of the edges of each tower in eta and phi
  # each list starts with the lower edge of the first tower
  # the list ends with the higher edged of the last tower

  # CHANGED: 0.025 in eta x pi/126 in phi for |eta| < 3.2
  set PhiBins {}
  for {set i -126} {$i <= 126} {incr i} {
    add PhiBins [expr {$i * $pi/126.0}]
  }
  for {set i -128} {$i <= 128} {incr i} {
    add EtaPhiBins [expr {$i * 0.025}] $PhiBins
  }

  # forward region 3.2 < |eta| < 4.9: 0.1 x 10 degrees (as the ATLAS card's combined towers)
  set PhiBins {}
  for {set i -18} {$i <= 18} {incr i} {
    add PhiBins [expr {$i * $pi/18.0}]
  }
  for {set i 1} {$i <= 17} {incr i} {
    add EtaPhiBins [expr {-3.2 - $i * 0.1}] $PhiBins
    add EtaPhiBins [expr {3.2 + $i * 0.1}] $PhiBins
  }

  # default energy fractions {abs(PDG code)} {F}
  add EnergyFraction {0} {0.0}
  # energy fractions for e, gamma and pi0
  add EnergyFraction {11} {1.0}
  add EnergyFraction {22} {1.0}
  add EnergyFraction {111} {1.0}
  # energy fractions for muon, neutrinos and neutralinos
  add EnergyFraction {12} {0.0}
  add EnergyFraction {13} {0.0}
  add EnergyFraction {14} {0.0}
  add EnergyFraction {16} {0.0}
  add EnergyFraction {1000022} {0.0}
  add EnergyFraction {1000023} {0.0}
  add EnergyFraction {1000025} {0.0}
  add EnergyFraction {1000035} {0.0}
  add EnergyFraction {1000045} {0.0}
  # energy fractions for K0short and Lambda
  add EnergyFraction {310} {0.3}
  add EnergyFraction {3122} {0.3}

  # resolution as a function of eta and energy: the ATLAS card's ECal formula
  set ResolutionFormula {                  (abs(eta) <= 3.2) * sqrt(energy^2*0.0017^2 + energy*0.101^2) +
                             (abs(eta) > 3.2 && abs(eta) <= 4.9) * sqrt(energy^2*0.0350^2 + energy*0.285^2)}
}

######
# HCal
######

# CHANGED: a SimpleCalorimeter of its own with cells of 0.1 x pi/31 (ATLAS-like tile
# calorimeter granularity, 4 x 4 image pixels), ATLAS HCal resolution.
module SimpleCalorimeter HCal {
  set ParticleInputArray ParticlePropagator/stableParticles
  set TrackInputArray ECal/eflowTracks

  set TowerOutputArray hcalTowers
  set EFlowTrackOutputArray eflowTracks
  set EFlowTowerOutputArray eflowNeutralHadrons

  set IsEcal false

  set EnergyMin 1.0
  # CHANGED: significance 1.0 as in the ATLAS card
  set EnergySignificanceMin 1.0

  set SmearTowerCenter true

  set pi [expr {acos(-1)}]

  # lists of the edges of each tower in eta and phi
  # each list starts with the lower edge of the first tower
  # the list ends with the higher edged of the last tower

  # CHANGED: 0.1 in eta x pi/31 in phi for |eta| < 3.2
  set PhiBins {}
  for {set i -31} {$i <= 31} {incr i} {
    add PhiBins [expr {$i * $pi/31.0}]
  }
  for {set i -32} {$i <= 32} {incr i} {
    add EtaPhiBins [expr {$i * 0.1}] $PhiBins
  }

  # forward region 3.2 < |eta| < 4.9: 0.1 x 10 degrees (as the ATLAS card's combined towers)
  set PhiBins {}
  for {set i -18} {$i <= 18} {incr i} {
    add PhiBins [expr {$i * $pi/18.0}]
  }
  for {set i 1} {$i <= 17} {incr i} {
    add EtaPhiBins [expr {-3.2 - $i * 0.1}] $PhiBins
    add EtaPhiBins [expr {3.2 + $i * 0.1}] $PhiBins
  }

  # default energy fractions {abs(PDG code)} {F}
  add EnergyFraction {0} {1.0}
  # energy fractions for e, gamma and pi0
  add EnergyFraction {11} {0.0}
  add EnergyFraction {22} {0.0}
  add EnergyFraction {111} {0.0}
  # energy fractions for muon, neutrinos and neutralinos
  add EnergyFraction {12} {0.0}
  add EnergyFraction {13} {0.0}
  add EnergyFraction {14} {0.0}
  add EnergyFraction {16} {0.0}
  add EnergyFraction {1000022} {0.0}
  add EnergyFraction {1000023} {0.0}
  add EnergyFraction {1000025} {0.0}
  add EnergyFraction {1000035} {0.0}
  add EnergyFraction {1000045} {0.0}
  # energy fractions for K0short and Lambda
  add EnergyFraction {310} {0.7}
  add EnergyFraction {3122} {0.7}

  # resolution as a function of eta and energy: the ATLAS card's HCal formula
  set ResolutionFormula {                  (abs(eta) <= 1.7) * sqrt(energy^2*0.0302^2 + energy*0.5205^2 + 1.59^2) +
                             (abs(eta) > 1.7 && abs(eta) <= 3.2) * sqrt(energy^2*0.0500^2 + energy*0.706^2) +
                             (abs(eta) > 3.2 && abs(eta) <= 4.9) * sqrt(energy^2*0.09420^2 + energy*1.00^2)}
}

##################################################
# Tower Merger: ECal + HCal towers -> Tower branch
##################################################

# CHANGED: added; its output is the Tower branch. ECal towers have Ehad = 0 and HCal towers
# Eem = 0, so imaging tells them apart (tower_shape: mixed draws HCal towers over their cells).
module Merger Calorimeter {
  add InputArray ECal/ecalTowers
  add InputArray HCal/hcalTowers
  set OutputArray towers
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
