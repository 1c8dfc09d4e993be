"""Flax StyleGAN2 networks, their ops and layers (pure functions of params) and the architecture table.

`alignjax.nn.Generator` / `alignjax.nn.Discriminator` are the flax modules; `alignjax.Generator` /
`alignjax.Discriminator` are the model objects (config + variables pytrees) whose `.module` they are.
"""

from alignjax.nn.arch import (
    D_ARCHITECTURES,
    G_ARCHITECTURES,
    DLayerSpec,
    LayerSpec,
    discriminator_layers,
    mapping_layers,
    noise_shapes,
    style_names,
    synthesis_layers,
    synthesis_weights,
)
from alignjax.nn.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    Impl,
    MappingNetwork,
    SynthesisNetwork,
    mix_styles,
)

__all__ = [
    'D_ARCHITECTURES',
    'G_ARCHITECTURES',
    'DLayerSpec',
    'Discriminator',
    'DiscriminatorConfig',
    'Generator',
    'GeneratorConfig',
    'Impl',
    'LayerSpec',
    'MappingNetwork',
    'SynthesisNetwork',
    'discriminator_layers',
    'mapping_layers',
    'mix_styles',
    'noise_shapes',
    'style_names',
    'synthesis_layers',
    'synthesis_weights',
]
