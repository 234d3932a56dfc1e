"""Training settings of one model (what config.yaml `training:` resolves to per model)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ModelError
from .generators import GeneratorSpec
from .likelihoods import LIKELIHOODS
from .objectives import OBJECTIVES

#: settings that may change between a checkpoint and its resumption (more epochs, other device)
NOT_IN_RESUME_KEY = ("epochs", "device", "calibrate_occupancy")
#: every value of the `family` setting: the paper's decoupled generator (model/decoupled.py) and the
#: comparison families (model/gan.py, model/vae.py), all trained by model/training.py's epoch loop
FAMILIES = ("decoupled", "gan", "vae", "towers")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; `seed` is this model's own (derived) seed."""

    arch: str = "fc"  # fc | deconv
    width: int = 256  # hidden units (fc) / channels of the first deconv map
    noise_dim: int = 32  # size of the generator's Gaussian noise
    epochs: int = 30
    batch_size: int = 512  # data images per step
    K: int = 128  # generated parameter sets per step (shared by the batch)
    lr: float = 1e-3  # Adam learning rate
    objective: str = "bound"  # bound | paper
    likelihood: str = "gaussian_fixed_sigma"
    conditional: bool = False  # generator also takes the muon pT (sampled at real pTs)
    marginal_weight: float = 0.0  # weight of KL(data || generator per-pixel occupancy) in the loss (0: off)
    calibrate_occupancy: bool = False  # after training, shift each pixel's logit to the data's occupancy
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    family: str = "decoupled"  # decoupled (paper, model/decoupled.py) | gan (LAGAN-style) | vae (model/vae.py)
    gan_critic_steps: int = 1  # gan: discriminator steps (one per data batch) per generator step
    kl_weight: float = 1.0  # vae: weight of the KL term (1: the ELBO)
    tower_count: str = "bernoulli"  # towers: bernoulli (each cell on its own) | multiplicity (count, then place)

    def check(self) -> None:
        """Raise ModelError naming the bad setting."""
        if self.family not in FAMILIES:
            raise ModelError(f"training setting 'family' must be one of {list(FAMILIES)}, got '{self.family}'")
        if int(self.gan_critic_steps) < 1:
            raise ModelError(f"training setting 'gan_critic_steps' must be >= 1, got {self.gan_critic_steps}")
        if self.tower_count not in ("bernoulli", "multiplicity"):
            raise ModelError(
                f"training setting 'tower_count' must be bernoulli or multiplicity, got {self.tower_count!r}")
        if not self.kl_weight > 0:
            raise ModelError(f"training setting 'kl_weight' must be > 0, got {self.kl_weight}")
        if self.family != "decoupled" and getattr(self, "conditional", False):
            raise ModelError(f"training setting 'conditional' is only implemented for family 'decoupled', "
                             f"not '{self.family}'; set conditional: false for this model")
        if not isinstance(self.calibrate_occupancy, bool):
            raise ModelError("training setting 'calibrate_occupancy' must be true or false, "
                             f"got {self.calibrate_occupancy!r}")
        if self.calibrate_occupancy and (self.family not in ("decoupled", "towers") or self.conditional):
            raise ModelError("training setting 'calibrate_occupancy' is implemented for unconditional decoupled "
                             f"models only (this one: family '{self.family}', conditional {self.conditional}); "
                             "set it to false")
        for name in ("width", "noise_dim", "epochs", "batch_size", "K"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"training setting '{name}' must be >= 1, got {getattr(self, name)}")
        if not float(self.marginal_weight) >= 0:
            raise ModelError(f"training setting 'marginal_weight' must be >= 0, got {self.marginal_weight}")
        if not self.lr > 0:
            raise ModelError(f"training setting 'lr' must be > 0, got {self.lr}")
        if self.objective not in OBJECTIVES:
            raise ModelError(
                f"training setting 'objective' must be one of {sorted(OBJECTIVES)}, got '{self.objective}'")
        if self.likelihood not in LIKELIHOODS:
            raise ModelError(
                f"training setting 'likelihood' must be one of {sorted(LIKELIHOODS)}, got '{self.likelihood}'")

    def generator_spec(self, npix: int) -> GeneratorSpec:
        """The generator these settings describe, for images of npix x npix."""
        return GeneratorSpec(arch=self.arch, npix=npix, noise_dim=self.noise_dim, width=self.width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resume_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share with this run to be resumed."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_IN_RESUME_KEY}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring None; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"unknown training settings {unknown}; known: {sorted(known)}")
        cfg = cls(**{k: v for k, v in values.items() if v is not None})
        cfg.check()
        return cfg
