"""The architecture table: every weighted layer of the StyleGAN2 generator and discriminator, for each of
NVlabs' architectures (G and D: 'orig' | 'skip' | 'resnet'; stylegan2-ada-pytorch `training/networks.py`).

This is the one place that lists the layers. The flax modules (`alignjax.nn.networks`), the checkpoint schema
and the name maps of every file format (`alignjax.io.formats`), the converter (`alignjax.io.convert`) and the
fused morph (`alignjax.apps.blend`) all iterate these tables instead of restating them.

    synthesis_layers(cfg)      -> [LayerSpec]   style-consuming layers of G.synthesis, in forward order
    synthesis_weights(cfg)     -> [LayerSpec]   all of G.synthesis' weighted layers (+ resnet 'skip' convs),
                                                in NVlabs' module (state-dict) order
    mapping_layers(...)        -> [DenseSpec]   the mapping network's dense layers (G, and D's label mapping)
    discriminator_layers(cfg)  -> [DLayerSpec]  D's weighted layers, in NVlabs' module (state-dict) order

The `*_table` functions take the channel dicts directly (checkpoint readers infer them before any config
exists); the `*_layers(cfg)` ones read a `GeneratorConfig` / `DiscriminatorConfig`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping


def block_resolutions(resolution: int) -> list[int]:
    """[4, 8, ..., resolution]."""
    return [2**i for i in range(2, int(round(math.log2(resolution))) + 1)]


G_ARCHITECTURES = ('orig', 'skip', 'resnet')
# NVlabs' resample filter (1-D taps, used separably); layers that never resample keep it in their buffers
DEFAULT_RESAMPLE_FILTER = (1, 3, 3, 1)
D_ARCHITECTURES = ('orig', 'skip', 'resnet')


def check_architecture(arch: str, which: str) -> str:
    """`arch` if it is one of NVlabs' architectures for `which` ('generator' | 'discriminator'), else ValueError."""
    known = G_ARCHITECTURES if which == 'generator' else D_ARCHITECTURES
    if arch not in known:
        raise ValueError(f'unknown {which} architecture {arch!r}; expected one of {known}')
    return arch


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One style-consuming layer of the synthesis network, in forward order."""

    name: str  # 'b4.conv1', 'b8.conv0', 'b8.torgb', 'b8.skip', ...
    res: int
    kind: str  # 'conv' | 'torgb' | 'skip' (resnet G: 1x1 2x-up conv without bias or style)
    in_channels: int
    out_channels: int
    up: int
    w_index: int  # which of the num_ws latents drives it (-1: skip)
    noise_index: int  # index among noise layers (-1 for ToRGB and skip)
    kernel: int = 3  # 3 (conv) | 1 (torgb, skip)

    @property
    def layer(self) -> str:
        """The layer's name inside its block: 'conv0' | 'conv1' | 'torgb'."""
        return self.name.split('.')[1]


def synthesis_table(
    resolution: int, channels: Mapping[int, int], img_channels: int, architecture: str = 'skip'
) -> list[LayerSpec]:
    """Weighted layers of a generator with `channels[res]` features per block resolution, block by block in
    NVlabs' module order ([const] conv0 conv1 [torgb] [skip]):
      skip:   a ToRGB in every block (the image is upsampled and summed);
      orig:   a ToRGB in the last block only;
      resnet: as orig, plus a 1x1 2x-up `skip` conv (no bias) in every block above 4x4, summed with conv1's
              output at gain sqrt(1/2).
    A block's ToRGB uses the latent after its convs (the next block's first), so num_ws is the same for all
    three."""
    check_architecture(architecture, 'generator')
    specs, w_idx, n_idx = [], 0, 0
    resolutions = block_resolutions(resolution)
    for res in resolutions:
        convs = ['conv1'] if res == 4 else ['conv0', 'conv1']
        for i, conv in enumerate(convs):
            cin = channels[res // 2] if conv == 'conv0' else channels[res]
            specs.append(
                LayerSpec(
                    f'b{res}.{conv}', res, 'conv', cin, channels[res], 2 if conv == 'conv0' else 1, w_idx + i, n_idx, 3
                )
            )
            n_idx += 1
        if architecture == 'skip' or res == resolutions[-1]:
            specs.append(
                LayerSpec(f'b{res}.torgb', res, 'torgb', channels[res], img_channels, 1, w_idx + len(convs), -1, 1)
            )
        if architecture == 'resnet' and res > 4:
            specs.append(LayerSpec(f'b{res}.skip', res, 'skip', channels[res // 2], channels[res], 2, -1, -1, 1))
        w_idx += len(convs)
    return specs


def synthesis_weights(cfg) -> list[LayerSpec]:
    """`synthesis_table` of a `GeneratorConfig` (every weighted layer, the resnet skips included)."""
    return synthesis_table(cfg.resolution, cfg.channels, cfg.img_channels, cfg.architecture)


def synthesis_layers(cfg) -> list[LayerSpec]:
    """The style-consuming layers (conv, torgb) of `synthesis_weights(cfg)`, in forward order."""
    return [s for s in synthesis_weights(cfg) if s.kind != 'skip']


def style_names(cfg) -> list[str]:
    """StyleSpace layer names in forward order."""
    return [s.name for s in synthesis_layers(cfg)]


def noise_shapes(cfg) -> dict[str, tuple[int, int]]:
    """{conv layer name: (res, res)} of every noise input (none for a generator built with use_noise=False)."""
    if not getattr(cfg, 'use_noise', True):
        return {}
    return {s.name: (s.res, s.res) for s in synthesis_layers(cfg) if s.kind == 'conv'}


@dataclasses.dataclass(frozen=True)
class DenseSpec:
    """One dense layer of a mapping network: `embed` (labels) or `fc{i}`."""

    name: str
    in_features: int
    out_features: int
    activation: str  # 'linear' | 'lrelu'


def mapping_layers(
    z_dim: int,
    c_dim: int,
    w_dim: int,
    num_layers: int,
    embed_features: int | None = None,
    layer_features: int | None = None,
) -> list[DenseSpec]:
    """The mapping network's layers (NVlabs `MappingNetwork`): [embed (c_dim only)], fc0 .. fc{num_layers-1}."""
    embed = (embed_features or w_dim) if c_dim else 0
    hidden = layer_features or w_dim
    feats = [z_dim + embed] + [hidden] * (num_layers - 1) + [w_dim]
    out = [DenseSpec('embed', c_dim, embed, 'linear')] if c_dim else []
    return out + [DenseSpec(f'fc{i}', feats[i], feats[i + 1], 'lrelu') for i in range(num_layers)]


@dataclasses.dataclass(frozen=True)
class DLayerSpec:
    """One weighted layer of the discriminator."""

    name: str  # 'b32.fromrgb', 'b32.conv0', 'b32.conv1', 'b32.skip', 'mapping.fc0', 'b4.conv', ...
    res: int  # block resolution (4: the epilogue; 0: the label mapping)
    kind: str  # 'conv' | 'dense'
    in_features: int
    out_features: int
    kernel: int = 0  # conv kernel size (0: dense)
    bias: bool = True
    activation: str = 'linear'
    down: int = 1
    clamp: bool = False  # clamped at +-conv_clamp (x the call's gain) when the D has one (NVlabs passes
    # conv_clamp to the blocks' fromrgb, conv0, conv1 and b4.conv; never to skip, the
    # epilogue's fromrgb (skip D) or the dense layers)

    @property
    def layer(self) -> str:
        return self.name.split('.', 1)[1]


def discriminator_table(
    resolution: int,
    channels: Mapping[int, int],
    img_channels: int,
    mbstd_num_channels: int = 1,
    c_dim: int = 0,
    cmap_dim: int | None = None,
    mapping_layers_: int = 0,
    architecture: str = 'resnet',
    embed_features: int | None = None,
    layer_features: int | None = None,
) -> list[DLayerSpec]:
    """Layers of a discriminator in NVlabs' module order: blocks b{res} .. b8 ([fromrgb] conv0 conv1 [skip]),
    the label mapping (conditional only), the 4x4 epilogue ([fromrgb] conv, fc over the NCHW flatten, out):
      resnet: fromrgb in the first block only; a 1x1 2x-down `skip` conv (no bias) in every block, summed with
              conv1's output at gain sqrt(1/2);
      orig:   fromrgb in the first block only, no skips;
      skip:   fromrgb in every block and in the epilogue, each reading the image downsampled to its
              resolution and added to the features."""
    check_architecture(architecture, 'discriminator')
    out = []
    for i, res in enumerate(r for r in reversed(block_resolutions(resolution)) if r > 4):
        c, c2 = channels[res], channels[res // 2]
        if i == 0 or architecture == 'skip':
            out.append(DLayerSpec(f'b{res}.fromrgb', res, 'conv', img_channels, c, 1, activation='lrelu', clamp=True))
        out += [
            DLayerSpec(f'b{res}.conv0', res, 'conv', c, c, 3, activation='lrelu', clamp=True),
            DLayerSpec(f'b{res}.conv1', res, 'conv', c, c2, 3, activation='lrelu', down=2, clamp=True),
        ]
        if architecture == 'resnet':
            out.append(DLayerSpec(f'b{res}.skip', res, 'conv', c, c2, 1, bias=False, down=2))
    c4 = channels[4]
    cmap = (cmap_dim or c4) if c_dim else 0
    if c_dim:
        out += [
            DLayerSpec(f'mapping.{d.name}', 0, 'dense', d.in_features, d.out_features, activation=d.activation)
            for d in mapping_layers(0, c_dim, cmap, mapping_layers_, embed_features, layer_features)
        ]
    if architecture == 'skip':
        out.append(DLayerSpec('b4.fromrgb', 4, 'conv', img_channels, c4, 1, activation='lrelu'))
    return out + [
        DLayerSpec('b4.conv', 4, 'conv', c4 + mbstd_num_channels, c4, 3, activation='lrelu', clamp=True),
        DLayerSpec('b4.fc', 4, 'dense', c4 * 16, c4, activation='lrelu'),
        DLayerSpec('b4.out', 4, 'dense', c4, cmap or 1),
    ]


def discriminator_layers(cfg) -> list[DLayerSpec]:
    """`discriminator_table` of a `DiscriminatorConfig`."""
    return discriminator_table(
        cfg.resolution,
        cfg.channels,
        cfg.img_channels,
        cfg.mbstd_num_channels,
        cfg.c_dim,
        cfg.cmap_dim,
        cfg.mapping_layers,
        cfg.architecture,
        cfg.embed_features,
        cfg.layer_features,
    )
