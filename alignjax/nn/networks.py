"""StyleGAN2 generator and discriminator in flax.linen: every architecture NVlabs ships (G and D 'orig' |
'skip' | 'resnet'; config F is skip G / resnet D, the defaults).

The numbers are those of NVlabs stylegan2-ada-pytorch `training/networks.py`; parameter names mirror its
state-dict names (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, `b32.skip.weight`, ...) so a
checkpoint converts key by key. Layouts are JAX's: NHWC activations, dense kernels [in, out], conv kernels
[kh, kw, in, out], the const input [4, 4, C]. Two variable collections:
  'params'   trainable weights;
  'buffers'  `mapping.w_avg` (tracked mean of w) and `synthesis.b*.conv*.noise_const` (fixed noise maps).

Shapes: z [N, z_dim], c [N, c_dim], ws [N, num_ws, w_dim], styles {layer name: [N, in_channels]},
images [N, H, W, img_channels] float32 in about [-1, 1].

The layer lists come from `alignjax.nn.arch` (the one architecture table); the synthesis computations are the
pure functions of `alignjax.nn.layers`, which the modules here only feed with their parameters.

Naming: these are the flax *modules*. `alignjax.Generator` / `alignjax.Discriminator` (in `alignjax.model`) are
the model objects users hold (a config plus variables, a pytree); `gen.module` is the `alignjax.nn.Generator`
they run.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.nn import layers as L
from alignjax.nn import ops
from alignjax.nn.arch import (
    DEFAULT_RESAMPLE_FILTER,
    DLayerSpec,
    LayerSpec,
    block_resolutions,
    check_architecture,
    discriminator_layers,
    mapping_layers,
    noise_shapes,
    style_names,
    synthesis_layers,
    synthesis_weights,
)

__all__ = [
    'Discriminator',
    'DiscriminatorConfig',
    'DLayerSpec',
    'Generator',
    'GeneratorConfig',
    'Impl',
    'LayerSpec',
    'MappingNetwork',
    'SynthesisNetwork',
    'discriminator_layers',
    'mix_styles',
    'noise_shapes',
    'style_names',
    'synthesis_layers',
    'synthesis_weights',
]

NOISE_MODES = ('const', 'none', 'random')


# ----------------------------------------------------------------------------------------------------------
# Configuration.


@dataclasses.dataclass(frozen=True)
class Impl:
    """Static implementation choices; any combination gives the same numbers (to float rounding)."""

    modconv: str = 'shared'  # 'shared' | 'grouped'
    upconv: str = 'split'  # 'split' (4 phase convs, 9 taps + pixel shuffle) | 'phase' (one 2x2 conv, 16 taps)
    #                        | 'upfir' | 'transpose' (reference)
    fir: str = 'polyphase'  # 'polyphase' | 'depthwise'
    downconv: str = 'split'  # 'split' (space-to-depth, 4 phase convs, 9 taps) | 's2d' (one conv over 4C, 16 taps)
    #                          | 'strided' (reference)
    wgrad: str = 'xla'  # derivatives of the convs: 'xla' (autodiff, the reference) | 'gemm' (per-tap GEMMs)
    dtype: str = 'float32'  # compute dtype of activations: 'float32' | 'bfloat16' (params stay float32)


def channels_dict(resolutions, channel_base: int, channel_max: int) -> dict[int, int]:
    return {r: min(channel_base // r, channel_max) for r in resolutions}


class _Config:
    """Shared by the G and D configs: validation, JSON round trip (impl may come back as a dict), replace."""

    def __post_init__(self):
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError(f'resolution must be a power of two >= 4, got {self.resolution}')
        if isinstance(self.impl, Mapping):
            object.__setattr__(self, 'impl', Impl(**self.impl))
        object.__setattr__(self, 'resample_filter', tuple(self.resample_filter))

    def replace(self, **kw):
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(_Config):
    resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    embed_features: int | None = None  # defaults to w_dim
    layer_features: int | None = None  # defaults to w_dim
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER  # 1-D taps, used separably (NVlabs setup_filter)
    use_noise: bool = True  # False: no noise inputs (no noise_strength / noise_const tensors), as NVlabs' option
    w_avg_beta: float = 0.995
    architecture: str = 'skip'  # 'orig' | 'skip' | 'resnet' (NVlabs SynthesisBlock)
    impl: Impl = Impl()

    def __post_init__(self):
        super().__post_init__()
        check_architecture(self.architecture, 'generator')

    @property
    def block_resolutions(self) -> list[int]:
        return block_resolutions(self.resolution)

    @property
    def channels(self) -> dict[int, int]:
        return channels_dict(self.block_resolutions, self.channel_base, self.channel_max)

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.resolution)) - 2


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig(_Config):
    resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    cmap_dim: int | None = None  # defaults to channels at 4x4 (conditional D only)
    mapping_layers: int = 8  # conditioning mapping (conditional D only; 0: label embed only)
    mapping_lr_mul: float = 0.01  # its fc layers' lr multiplier (TF-ADA's D: 0.1)
    embed_features: int | None = None  # its label embedding width; defaults to cmap_dim
    layer_features: int | None = None  # its hidden width; defaults to cmap_dim
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER
    architecture: str = 'resnet'  # 'orig' | 'skip' | 'resnet' (NVlabs DiscriminatorBlock)
    impl: Impl = Impl()

    def __post_init__(self):
        super().__post_init__()
        check_architecture(self.architecture, 'discriminator')

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.resolution)), 2, -1)]

    @property
    def channels(self) -> dict[int, int]:
        return channels_dict(self.block_resolutions + [4], self.channel_base, self.channel_max)


_dtype = L.compute_dtype


# ----------------------------------------------------------------------------------------------------------
# Layers.


def _randn_over(scale: float):
    return lambda key, shape: jax.random.normal(key, shape, jnp.float32) / scale


class FullyConnected(nn.Module):
    """Equalised-lr dense layer: x @ (W * lr_mul / sqrt(in)) + b * lr_mul. x: [N, in] -> [N, out]."""

    in_features: int
    out_features: int
    activation: str = 'linear'
    lr_mul: float = 1.0
    bias_init: float = 0.0

    def setup(self):
        self.weight = self.param('weight', _randn_over(self.lr_mul), (self.in_features, self.out_features))
        self.bias = self.param('bias', nn.initializers.constant(self.bias_init), (self.out_features,))

    def params(self):
        return {'weight': self.weight, 'bias': self.bias}

    def __call__(self, x):
        return L.dense(self.params(), x, lr_mul=self.lr_mul, activation=self.activation)


class Conv2dLayer(nn.Module):
    """Equalised-lr conv with optional FIR down-sampling. x: [N, H, W, in] -> [N, H/down, W/down, out]."""

    in_channels: int
    out_channels: int
    kernel_size: int
    bias: bool = True
    activation: str = 'linear'
    down: int = 1
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER
    impl: Impl = Impl()

    @nn.compact
    def __call__(self, x, gain: float = 1.0):
        k = self.kernel_size
        w = self.param('weight', _randn_over(1.0), (k, k, self.in_channels, self.out_channels))
        b = self.param('bias', nn.initializers.zeros, (self.out_channels,)) if self.bias else None
        w = w * (1 / math.sqrt(self.in_channels * k * k))
        x = ops.conv2d_resample(
            x,
            w,
            ops.setup_filter(self.resample_filter),
            down=self.down,
            padding=k // 2,
            fir_impl=self.impl.fir,
            down_impl=self.impl.downconv,
            wgrad=self.impl.wgrad,
        )
        act_gain = (ops.LRELU_GAIN if self.activation == 'lrelu' else 1.0) * gain
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return ops.bias_act(x, b, self.activation, act_gain, clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + noise + bias + lrelu. `style(w)`: [N, w_dim] -> [N, in];
    `__call__(x, style, noise)`: [N, H, W, in] -> [N, H*up, W*up, out]."""

    spec: LayerSpec
    w_dim: int
    conv_clamp: float | None
    resample_filter: tuple[float, ...]
    impl: Impl
    use_noise: bool = True

    def setup(self):
        s = self.spec
        self.affine = FullyConnected(self.w_dim, s.in_channels, bias_init=1.0)
        self.weight = self.param('weight', _randn_over(1.0), (3, 3, s.in_channels, s.out_channels))
        self.bias = self.param('bias', nn.initializers.zeros, (s.out_channels,))
        if self.use_noise:
            self.noise_strength = self.param('noise_strength', nn.initializers.zeros, ())
            self.noise_const = self.variable(
                'buffers',
                'noise_const',
                lambda: jax.random.normal(self.make_rng('params'), (s.res, s.res), jnp.float32),
            )

    def style(self, w):
        return self.affine(w)

    def params(self):
        p = {'weight': self.weight, 'bias': self.bias}
        return p | ({'noise_strength': self.noise_strength} if self.use_noise else {})

    def __call__(self, x, style, noise=None):
        """noise: unit-variance noise [N or 1, H, W] (scaled here by noise_strength), or None."""
        return L.modulated_layer(
            self.params(),
            x,
            style,
            self.spec,
            impl=self.impl,
            conv_clamp=self.conv_clamp,
            resample_filter=self.resample_filter,
            noise=noise,
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation. style: [N, in]; x: [N, H, W, in] -> [N, H, W, img_channels]."""

    spec: LayerSpec
    w_dim: int
    conv_clamp: float | None
    impl: Impl

    def setup(self):
        s = self.spec
        self.affine = FullyConnected(self.w_dim, s.in_channels, bias_init=1.0)
        self.weight = self.param('weight', _randn_over(1.0), (1, 1, s.in_channels, s.out_channels))
        self.bias = self.param('bias', nn.initializers.zeros, (s.out_channels,))

    def style(self, w):
        return self.affine(w)

    def params(self):
        return {'weight': self.weight, 'bias': self.bias}

    def __call__(self, x, style, noise=None):
        return L.torgb_layer(self.params(), x, style, self.spec, impl=self.impl, conv_clamp=self.conv_clamp)


class SkipLayer(nn.Module):
    """The resnet generator's 1x1 2x-up conv without bias (its parameters only; `layers.skip_layer` runs it)."""

    spec: LayerSpec

    def setup(self):
        s = self.spec
        self.weight = self.param('weight', _randn_over(1.0), (1, 1, s.in_channels, s.out_channels))

    def params(self):
        return {'weight': self.weight}


class SynthesisBlock(nn.Module):
    """One resolution: [const] conv0 (2x up) conv1 [torgb] [skip] (`layers.synthesis_block` for each
    architecture). specs: the block's layers of `synthesis_weights`."""

    specs: tuple[LayerSpec, ...]
    w_dim: int
    conv_clamp: float | None
    resample_filter: tuple[float, ...]
    impl: Impl
    use_noise: bool = True

    def setup(self):
        first = self.specs[0]
        if first.res == 4:
            self.const = self.param('const', _randn_over(1.0), (4, 4, first.out_channels))
        for s in self.specs:
            name = s.layer
            if s.kind == 'conv':
                layer = SynthesisLayer(s, self.w_dim, self.conv_clamp, self.resample_filter, self.impl, self.use_noise)
            elif s.kind == 'skip':
                layer = SkipLayer(s)
            else:
                layer = ToRGBLayer(s, self.w_dim, self.conv_clamp, self.impl)
            setattr(self, name, layer)

    def layer(self, spec: LayerSpec):
        return getattr(self, spec.layer)

    def params(self):
        p = {'const': self.const} if self.specs[0].res == 4 else {}
        return p | {s.layer: self.layer(s).params() for s in self.specs}

    def __call__(self, x, img, styles, noises):
        """x: [N, h, w, C] or None (4x4 block); img: [N, h, w, 3] float32 or None. Returns (x, img)."""
        return L.synthesis_block(
            self.params(),
            x,
            img,
            styles,
            noises,
            self.specs,
            impl=self.impl,
            conv_clamp=self.conv_clamp,
            resample_filter=self.resample_filter,
        )


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> styles -> image [N, H, W, img_channels]."""

    cfg: GeneratorConfig

    def setup(self):
        cfg = self.cfg
        specs = synthesis_weights(cfg)
        for res in cfg.block_resolutions:
            block_specs = tuple(s for s in specs if s.res == res)
            block = SynthesisBlock(block_specs, cfg.w_dim, cfg.conv_clamp, cfg.resample_filter, cfg.impl, cfg.use_noise)
            setattr(self, f'b{res}', block)

    def _layer(self, spec: LayerSpec):
        return getattr(self, f'b{spec.res}').layer(spec)

    def styles(self, ws):
        """Every affine output in forward order: OrderedDict {'b4.conv1': [N, C], 'b4.torgb': [N, C], ...}
        (an OrderedDict keeps that order through jax.jit, whose outputs sort a plain dict's keys)."""
        _check_ws(ws, self.cfg)
        return collections.OrderedDict(
            (s.name, self._layer(s).style(ws[:, s.w_index])) for s in synthesis_layers(self.cfg)
        )

    def from_styles(self, styles, noise_mode='const', noise=None, key=None):
        """Image from StyleSpace codes. noise_mode: 'const' | 'none' | 'random' (needs `key`; every layer draws
        its own noise from fold_in(key, layer)). `noise`: optional {layer name: [N or 1, r, r]} unit-variance
        maps that override noise_mode for those layers."""
        cfg = self.cfg
        specs = synthesis_layers(cfg)
        missing = [s.name for s in specs if s.name not in styles]
        if missing:
            raise KeyError(f'styles lack layers {missing}; expected {style_names(cfg)}')
        n = styles[specs[0].name].shape[0]
        noises = self._noises(n, noise_mode, noise or {}, key, specs)
        x = img = None
        for res in cfg.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, styles, noises)
        return img

    def _noises(self, n, noise_mode, noise, key, specs):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
        if not self.cfg.use_noise:  # NVlabs use_noise=False: the layers add no noise, whatever the mode
            if noise:
                raise KeyError(f'noise given for layers {sorted(noise)} of a generator without noise inputs')
            return {}
        unknown = set(noise) - {s.name for s in specs if s.kind == 'conv'}
        if unknown:
            raise KeyError(f'noise given for unknown layers {sorted(unknown)}')
        if noise_mode == 'random' and key is None and len(noise) < sum(s.kind == 'conv' for s in specs):
            raise ValueError("noise_mode='random' needs a PRNG key")
        out = {}
        for s in specs:
            if s.kind != 'conv':
                continue
            if s.name in noise:
                m = jnp.asarray(noise[s.name], jnp.float32)
                if m.ndim == 2:
                    m = m[None]
                if m.shape[-2:] != (s.res, s.res):
                    raise ValueError(f'noise for {s.name} must be [N, {s.res}, {s.res}], got {m.shape}')
                out[s.name] = m
            elif noise_mode == 'const':
                out[s.name] = self._layer(s).noise_const.value[None]
            elif noise_mode == 'random':
                out[s.name] = jax.random.normal(jax.random.fold_in(key, s.noise_index), (n, s.res, s.res))
        return out

    def __call__(self, ws, noise_mode='const', noise=None, key=None):
        return self.from_styles(self.styles(ws), noise_mode, noise, key)


def _check_ws(ws, cfg):
    if ws.ndim != 3 or ws.shape[1:] != (cfg.num_ws, cfg.w_dim):
        raise ValueError(f'ws must be [N, {cfg.num_ws}, {cfg.w_dim}], got {tuple(ws.shape)}')


class MappingNetwork(nn.Module):
    """z [N, z_dim] (+ c [N, c_dim]) -> w, broadcast to [N, num_ws, w_dim] (or [N, w_dim] if num_ws is None)."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None
    num_layers: int = 8
    lr_mul: float = 0.01
    embed_features: int | None = None
    layer_features: int | None = None
    w_avg_beta: float | None = 0.995

    def setup(self):
        for d in mapping_layers(
            self.z_dim, self.c_dim, self.w_dim, self.num_layers, self.embed_features, self.layer_features
        ):
            lr_mul = 1.0 if d.name == 'embed' else self.lr_mul
            setattr(self, d.name, FullyConnected(d.in_features, d.out_features, d.activation, lr_mul=lr_mul))
        if self.num_ws is not None and self.w_avg_beta is not None:
            self.w_avg = self.variable('buffers', 'w_avg', lambda: jnp.zeros((self.w_dim,), jnp.float32))

    def __call__(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        xs = []
        if self.z_dim:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f'z must be [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}')
            xs.append(ops.normalize_2nd_moment(z.astype(jnp.float32)))
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(
                    f'c must be [N, {self.c_dim}] (conditional model), got {None if c is None else tuple(c.shape)}'
                )
            xs.append(ops.normalize_2nd_moment(self.embed(c.astype(jnp.float32))))
        x = jnp.concatenate(xs, axis=1) if len(xs) > 1 else xs[0]
        for i in range(self.num_layers):
            x = getattr(self, f'fc{i}')(x)
        if update_emas and self.num_ws is not None and self.w_avg_beta is not None:
            self.w_avg.value = jnp.mean(x, axis=0) + self.w_avg_beta * (self.w_avg.value - jnp.mean(x, axis=0))
        if self.num_ws is None:
            return x
        x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        # psi == 1 known before tracing: no truncation arithmetic at all (as NVlabs' `if truncation_psi != 1`)
        if not (isinstance(truncation_psi, (int, float, np.number)) and truncation_psi == 1):
            w_avg = self.w_avg.value
            t = w_avg + truncation_psi * (x - w_avg)
            if truncation_cutoff is None:
                x = t
            else:
                x = jnp.where((jnp.arange(self.num_ws) < truncation_cutoff)[None, :, None], t, x)
        return x


class Generator(nn.Module):
    """Mapping + synthesis. `__call__(z, c)` -> images [N, H, W, img_channels]."""

    cfg: GeneratorConfig

    def setup(self):
        cfg = self.cfg
        self.mapping = MappingNetwork(
            cfg.z_dim,
            cfg.c_dim,
            cfg.w_dim,
            cfg.num_ws,
            cfg.mapping_layers,
            cfg.mapping_lr_mul,
            cfg.embed_features,
            cfg.layer_features,
            cfg.w_avg_beta,
        )
        self.synthesis = SynthesisNetwork(cfg)

    def map(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)

    def synthesize(self, ws, noise_mode='const', noise=None, key=None):
        return self.synthesis(ws, noise_mode, noise, key)

    def styles(self, ws):
        return self.synthesis.styles(ws)

    def from_styles(self, styles, noise_mode='const', noise=None, key=None):
        return self.synthesis.from_styles(styles, noise_mode, noise, key)

    def __call__(
        self,
        z,
        c=None,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode='const',
        noise=None,
        key=None,
        update_emas=False,
    ):
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesis(ws, noise_mode, noise, key)


def mix_styles(ws_a, ws_b, crossover):
    """Style mixing: layers [0, crossover) from ws_a, the rest from ws_b. crossover may be traced, per sample
    ([N]) or shared."""
    idx = jnp.arange(ws_a.shape[1])
    cut = jnp.asarray(crossover)
    mask = (idx[None, :] < cut.reshape(-1, 1))[..., None]
    return jnp.where(mask, ws_a, ws_b)


# ----------------------------------------------------------------------------------------------------------
# Discriminator.


def _d_convs(specs, conv_clamp, resample_filter, impl) -> dict:
    return {
        s.layer: Conv2dLayer(
            s.in_features,
            s.out_features,
            s.kernel,
            bias=s.bias,
            activation=s.activation,
            down=s.down,
            conv_clamp=conv_clamp if s.clamp else None,
            resample_filter=resample_filter,
            impl=impl,
            name=s.layer,
        )
        for s in specs
        if s.kind == 'conv'
    }


class DiscriminatorBlock(nn.Module):
    """NVlabs `DiscriminatorBlock`, any architecture (the block's specs say which): [fromrgb] conv0, conv1 (2x
    down) [+ 1x1 skip (2x down), the sum at gain sqrt(1/2)]. fromrgb reads the image: in the first block only
    (orig, resnet), or in every block, its output added to the features and the image FIR-downsampled for the
    next block (skip). specs: the block's layers from `discriminator_layers`. Returns (x, img)."""

    specs: tuple[DLayerSpec, ...]
    conv_clamp: float | None
    resample_filter: tuple[float, ...]
    impl: Impl
    architecture: str = 'resnet'

    @nn.compact
    def __call__(self, x, img):
        conv = _d_convs(self.specs, self.conv_clamp, self.resample_filter, self.impl)
        if 'fromrgb' in conv:
            img = img.astype(_dtype(self.impl))
            y = conv['fromrgb'](img)
            x = y if x is None else x + y
            img = (
                ops.downsample2d(img, ops.setup_filter(self.resample_filter), impl=self.impl.fir)
                if self.architecture == 'skip'
                else None
            )
        if 'skip' in conv:
            y = conv['skip'](x, gain=math.sqrt(0.5))
            x = conv['conv0'](x)
            x = conv['conv1'](x, gain=math.sqrt(0.5))
            return y + x, img
        return conv['conv1'](conv['conv0'](x)), img


class Discriminator(nn.Module):
    """img [N, H, W, img_channels] (+ c) -> logits [N, 1]."""

    cfg: DiscriminatorConfig

    @nn.compact
    def __call__(self, img, c=None):
        cfg = self.cfg
        if img.ndim != 4 or img.shape[1:] != (cfg.resolution, cfg.resolution, cfg.img_channels):
            raise ValueError(
                f'D expects images [N, {cfg.resolution}, {cfg.resolution}, {cfg.img_channels}] '
                f'(NHWC), got {tuple(img.shape)}'
            )
        specs = discriminator_layers(cfg)
        x = None
        for res in cfg.block_resolutions:
            x, img = DiscriminatorBlock(
                tuple(s for s in specs if s.res == res),
                cfg.conv_clamp,
                cfg.resample_filter,
                cfg.impl,
                cfg.architecture,
                name=f'b{res}',
            )(x, img)
        cmap = None
        ch = cfg.channels
        cmap_dim = cfg.cmap_dim or ch[4]
        if cfg.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != cfg.c_dim:
                raise ValueError(
                    f'c must be [N, {cfg.c_dim}] (conditional D), got {None if c is None else tuple(c.shape)}'
                )
            cmap = MappingNetwork(
                0,
                cfg.c_dim,
                cmap_dim,
                None,
                cfg.mapping_layers,
                cfg.mapping_lr_mul,
                cfg.embed_features,
                cfg.layer_features,
                w_avg_beta=None,
                name='mapping',
            )(None, c)
        return DiscriminatorEpilogue(
            tuple(s for s in specs if s.res == 4),
            cfg.mbstd_group_size,
            cfg.mbstd_num_channels,
            cfg.conv_clamp,
            cfg.impl,
            name='b4',
        )(x, cmap, img)


class DiscriminatorEpilogue(nn.Module):
    """4x4: [fromrgb of the 4x4 image added (skip D)], minibatch-stddev, 3x3 conv, dense over the NCHW flatten,
    output (projection when conditional). specs: the [b4.fromrgb], b4.conv, b4.fc, b4.out layers of
    `discriminator_layers`."""

    specs: tuple[DLayerSpec, ...]
    mbstd_group_size: int | None
    mbstd_num_channels: int
    conv_clamp: float | None
    impl: Impl

    @nn.compact
    def __call__(self, x, cmap=None, img=None):
        *rgb, conv, fc, out = self.specs
        if rgb:
            (s,) = rgb
            y = Conv2dLayer(
                s.in_features,
                s.out_features,
                s.kernel,
                activation=s.activation,
                conv_clamp=self.conv_clamp if s.clamp else None,
                impl=self.impl,
                name=s.layer,
            )(img)
            x = y if x is None else x + y
        if self.mbstd_num_channels > 0:
            x = ops.minibatch_std(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = Conv2dLayer(
            conv.in_features,
            conv.out_features,
            conv.kernel,
            activation=conv.activation,
            conv_clamp=self.conv_clamp if conv.clamp else None,
            impl=self.impl,
            name=conv.layer,
        )(x)
        x = jnp.transpose(x.astype(jnp.float32), (0, 3, 1, 2)).reshape(x.shape[0], -1)  # NCHW flatten, as NVlabs
        x = FullyConnected(fc.in_features, fc.out_features, fc.activation, name=fc.layer)(x)
        x = FullyConnected(out.in_features, out.out_features, out.activation, name=out.layer)(x)
        if cmap is not None:
            x = jnp.sum(x * cmap, axis=1, keepdims=True) * (1 / math.sqrt(out.out_features))
        return x
