from .base import Autoencoder
from .plain_ae import PlainAE
from .perceptual import PerceptualAE
from .sampled import SampledAE

registry = {"PlainAE": PlainAE, "PerceptualAE": PerceptualAE, "SampledAE": SampledAE}
