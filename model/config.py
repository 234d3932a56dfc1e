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
#: comparison families (model/gan.py, model/vae.py, model/sarm.py, model/towers.py), all trained by
#: model/training.py's epoch loop
FAMILIES = ("decoupled", "gan", "vae", "sarm", "towers")
#: the sarm family's one architecture (a gated PixelCNN); the other families' generators are fc | deconv
SARM_ARCH = "pixelcnn"
#: adversarial losses of the gan family: LAGAN's non-saturating GAN loss, or Wasserstein with gradient penalty
GAN_LOSSES = ("nonsaturating", "wgan_gp")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; `seed` is this model's own (derived) seed."""

    arch: str = "fc"  # fc | deconv (decoupled, vae, gan) | pixelcnn (sarm)
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
    calibrate_occupancy: bool = False  # after training, shift each pixel's logit (gan: bias) to the data's occupancy
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    family: str = "decoupled"  # decoupled (paper, model/decoupled.py) | gan (LAGAN-style) | vae (model/vae.py)
    gan_critic_steps: int = 1  # gan: discriminator steps (one per data batch) per generator step
    gan_loss: str = "nonsaturating"  # gan: nonsaturating (LAGAN) | wgan_gp (critic + gradient penalty)
    gan_gp_weight: float = 10.0  # gan, wgan_gp: weight lambda of the gradient penalty
    gan_spectral_norm: bool = False  # gan: spectral normalisation of every discriminator layer
    gan_sparsity_features: bool = False  # gan: discriminator also sees pixel occupancy, image sparsity and energy
    gan_label_flip: float = 0.0  # gan, nonsaturating: probability of flipping a real/fake label (LAGAN: 0.05)
    gan_threshold_output: bool = False  # gan: non-zero generated pixels start at the data's ET threshold
    gan_minibatch_average: bool = False  # gan: minibatch discrimination averages over the batch (not sums)
    gan_straight_through: bool = False  # gan: switched-off pixels get gradients (straight-through output)
    gan_adam_beta1: float = 0.5  # gan: Adam's beta1 of both networks (LAGAN 0.5; WGAN-GP paper 0)
    gan_adam_beta2: float = 0.999  # gan: Adam's beta2 of both networks (LAGAN 0.999; WGAN-GP paper 0.9)
    kl_weight: float = 1.0  # vae: weight of the KL term (1: the ELBO)
    sarm_channels: int = 16  # sarm: feature maps of each PixelCNN stack
    sarm_layers: int = 5  # sarm: gated masked-convolution layers
    sarm_kernel: int = 3  # sarm: odd width of the masked convolutions
    sarm_components: int = 3  # sarm: Gaussians of the truncated log-ET mixture of non-zero values
    tower_count: str = "bernoulli"  # towers: bernoulli (each cell on its own) | multiplicity (count, then place)

    def check(self) -> None:
        """Raise ModelError naming the bad setting."""
        if self.family not in FAMILIES:
            raise ModelError(f"training setting 'family' must be one of {list(FAMILIES)}, got '{self.family}'")
        if int(self.gan_critic_steps) < 1:
            raise ModelError(f"training setting 'gan_critic_steps' must be >= 1, got {self.gan_critic_steps}")
        if self.gan_loss not in GAN_LOSSES:
            raise ModelError(f"training setting 'gan_loss' must be one of {list(GAN_LOSSES)}, got '{self.gan_loss}'")
        if not float(self.gan_gp_weight) >= 0:
            raise ModelError(f"training setting 'gan_gp_weight' must be >= 0, got {self.gan_gp_weight}")
        if not 0 <= float(self.gan_label_flip) < 0.5:
            raise ModelError(f"training setting 'gan_label_flip' must be in [0, 0.5), got {self.gan_label_flip}")
        for name in ("gan_adam_beta1", "gan_adam_beta2"):
            if not 0 <= float(getattr(self, name)) < 1:
                raise ModelError(f"training setting '{name}' must be in [0, 1), got {getattr(self, name)}")
        for name in ("gan_spectral_norm", "gan_sparsity_features", "gan_threshold_output", "gan_minibatch_average",
                     "gan_straight_through"):
            if not isinstance(getattr(self, name), bool):
                raise ModelError(f"training setting '{name}' must be true or false, got {getattr(self, name)!r}")
        if self.tower_count not in ("bernoulli", "multiplicity"):
            raise ModelError(
                f"training setting 'tower_count' must be bernoulli or multiplicity, got {self.tower_count!r}")
        if not self.kl_weight > 0:
            raise ModelError(f"training setting 'kl_weight' must be > 0, got {self.kl_weight}")
        if (self.family == "sarm") != (self.arch == SARM_ARCH):
            raise ModelError(f"training setting 'arch' '{self.arch}' does not fit family '{self.family}': the sarm "
                             f"family takes arch '{SARM_ARCH}' (and only it does); the others fc or deconv")
        for name in ("sarm_channels", "sarm_layers", "sarm_components"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"training setting '{name}' must be >= 1, got {getattr(self, name)}")
        if int(self.sarm_kernel) < 3 or int(self.sarm_kernel) % 2 == 0:
            raise ModelError(f"training setting 'sarm_kernel' must be odd and >= 3, got {self.sarm_kernel}")
        if self.family != "decoupled" and getattr(self, "conditional", False):
            raise ModelError(f"training setting 'conditional' is only implemented for family 'decoupled', "
                             f"not '{self.family}'; set conditional: false for this model")
        if not isinstance(self.calibrate_occupancy, bool):
            raise ModelError("training setting 'calibrate_occupancy' must be true or false, "
                             f"got {self.calibrate_occupancy!r}")
        if self.calibrate_occupancy and (self.family not in ("decoupled", "gan", "towers") or self.conditional):
            raise ModelError("training setting 'calibrate_occupancy' is implemented for unconditional decoupled "
                             f"and gan models only (this one: family '{self.family}', conditional "
                             f"{self.conditional}); set it to false")
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
