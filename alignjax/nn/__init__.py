"""Flax StyleGAN2 networks and their ops (pure functions of params)."""
from alignjax.nn.networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, Impl,
                                  MappingNetwork, SynthesisNetwork, mix_styles, noise_shapes, style_names,
                                  synthesis_layers)
