"""Network architectures (no training or I/O code)."""

from stargan_app.models.cgan import CGANDiscriminator, CGANGenerator
from stargan_app.models.stargan import Discriminator, Generator

__all__ = ["CGANDiscriminator", "CGANGenerator", "Discriminator", "Generator"]
