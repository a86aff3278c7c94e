"""Network architectures (no training or I/O code)."""

from stargan_app.models.cgan import CGANDiscriminator, CGANGenerator
from stargan_app.models.guide import AttributeGuide
from stargan_app.models.stargan import Discriminator, Generator

__all__ = ["AttributeGuide", "CGANDiscriminator", "CGANGenerator", "Discriminator", "Generator"]
