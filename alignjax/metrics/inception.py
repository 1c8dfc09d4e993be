"""Inception-v3 for FID, in Flax (linen, NHWC), with the weights users already have.

The network is FID's exact variant, the 2015 TensorFlow graph as pytorch-fid ports it (`pt_inception-2015-12-05-
6726825d.pth`, a torch state dict read here without torch through `alignjax.io.torch_file.load_torch`; nothing in
the file is executed):

* input: uint8 [N, H, W, 3] or float in [-1, 1]; bilinear resize to 299x299 (torch's `align_corners=False`
  half-pixel rule, no antialiasing, as pytorch-fid), values in [-1, 1];
* torchvision's Inception3 trunk (BasicConv2d = bias-free conv, BatchNorm eps 1e-3 with running statistics,
  ReLU) with the FID blocks: in Mixed_5b-d (A), 6b-e (C) and 7b (E_1) the pool branch is a 3x3 stride-1 average
  pool that does not count the zero padding (TF's avg-pool); in Mixed_7c (E_2) it is a 3x3 max pool;
* outputs: 'features' = pool3 [N, 2048] (global average of Mixed_7c), 'logits' = fc [N, 1008].

    inc = load_inception('pt_inception-2015-12-05-6726825d.pth')
    feats = inc(images)['features']                         # [N, 2048] float32

`inception_state_dict_shapes()` is the file's key -> shape table (from the architecture below); a file with a
missing, unexpected or mis-shaped key is refused with a `CheckpointError` naming the key.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.torch_file import load_torch
from alignjax.metrics.extractors import to_unit_range

__all__ = [
    'InceptionV3',
    'InceptionNet',
    'load_inception',
    'inception_from_state_dict',
    'random_inception',
    'inception_state_dict_shapes',
    'resize_bilinear',
    'resize_matrix',
    'avg_pool_3x3_exclude_pad',
    'max_pool',
    'FID_RESOLUTION',
    'FID_WEIGHTS_NAME',
]

FID_RESOLUTION = 299
FID_WEIGHTS_NAME = 'pt_inception-2015-12-05-6726825d.pth'
NUM_CLASSES = 1008
BN_EPS = 1e-3
_DN = ('NHWC', 'HWIO', 'NHWC')


# ----------------------------------------------------------------------------------------------------------
# Architecture table: every BasicConv2d as (path, in, out, (kh, kw), stride, (ph, pw)), in torch's names.


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _block_a(cin, pool):
    return [
        ('branch1x1', cin, 64, 1, 1, 0),
        ('branch5x5_1', cin, 48, 1, 1, 0),
        ('branch5x5_2', 48, 64, 5, 1, 2),
        ('branch3x3dbl_1', cin, 64, 1, 1, 0),
        ('branch3x3dbl_2', 64, 96, 3, 1, 1),
        ('branch3x3dbl_3', 96, 96, 3, 1, 1),
        ('branch_pool', cin, pool, 1, 1, 0),
    ]


def _block_b(cin):
    return [
        ('branch3x3', cin, 384, 3, 2, 0),
        ('branch3x3dbl_1', cin, 64, 1, 1, 0),
        ('branch3x3dbl_2', 64, 96, 3, 1, 1),
        ('branch3x3dbl_3', 96, 96, 3, 2, 0),
    ]


def _block_c(cin, c7):
    return [
        ('branch1x1', cin, 192, 1, 1, 0),
        ('branch7x7_1', cin, c7, 1, 1, 0),
        ('branch7x7_2', c7, c7, (1, 7), 1, (0, 3)),
        ('branch7x7_3', c7, 192, (7, 1), 1, (3, 0)),
        ('branch7x7dbl_1', cin, c7, 1, 1, 0),
        ('branch7x7dbl_2', c7, c7, (7, 1), 1, (3, 0)),
        ('branch7x7dbl_3', c7, c7, (1, 7), 1, (0, 3)),
        ('branch7x7dbl_4', c7, c7, (7, 1), 1, (3, 0)),
        ('branch7x7dbl_5', c7, 192, (1, 7), 1, (0, 3)),
        ('branch_pool', cin, 192, 1, 1, 0),
    ]


def _block_d(cin):
    return [
        ('branch3x3_1', cin, 192, 1, 1, 0),
        ('branch3x3_2', 192, 320, 3, 2, 0),
        ('branch7x7x3_1', cin, 192, 1, 1, 0),
        ('branch7x7x3_2', 192, 192, (1, 7), 1, (0, 3)),
        ('branch7x7x3_3', 192, 192, (7, 1), 1, (3, 0)),
        ('branch7x7x3_4', 192, 192, 3, 2, 0),
    ]


def _block_e(cin):
    return [
        ('branch1x1', cin, 320, 1, 1, 0),
        ('branch3x3_1', cin, 384, 1, 1, 0),
        ('branch3x3_2a', 384, 384, (1, 3), 1, (0, 1)),
        ('branch3x3_2b', 384, 384, (3, 1), 1, (1, 0)),
        ('branch3x3dbl_1', cin, 448, 1, 1, 0),
        ('branch3x3dbl_2', 448, 384, 3, 1, 1),
        ('branch3x3dbl_3a', 384, 384, (1, 3), 1, (0, 1)),
        ('branch3x3dbl_3b', 384, 384, (3, 1), 1, (1, 0)),
        ('branch_pool', cin, 192, 1, 1, 0),
    ]


# (name, kind, block table); stem convs are single-entry tables with an empty sub-name.
ARCH = (
    ('Conv2d_1a_3x3', 'conv', [('', 3, 32, 3, 2, 0)]),
    ('Conv2d_2a_3x3', 'conv', [('', 32, 32, 3, 1, 0)]),
    ('Conv2d_2b_3x3', 'conv', [('', 32, 64, 3, 1, 1)]),
    ('maxpool1', 'maxpool', None),
    ('Conv2d_3b_1x1', 'conv', [('', 64, 80, 1, 1, 0)]),
    ('Conv2d_4a_3x3', 'conv', [('', 80, 192, 3, 1, 0)]),
    ('maxpool2', 'maxpool', None),
    ('Mixed_5b', 'A', _block_a(192, 32)),
    ('Mixed_5c', 'A', _block_a(256, 64)),
    ('Mixed_5d', 'A', _block_a(288, 64)),
    ('Mixed_6a', 'B', _block_b(288)),
    ('Mixed_6b', 'C', _block_c(768, 128)),
    ('Mixed_6c', 'C', _block_c(768, 160)),
    ('Mixed_6d', 'C', _block_c(768, 160)),
    ('Mixed_6e', 'C', _block_c(768, 192)),
    ('Mixed_7a', 'D', _block_d(768)),
    ('Mixed_7b', 'E_1', _block_e(1280)),
    ('Mixed_7c', 'E_2', _block_e(2048)),
)


def _conv_entries():
    for name, _, table in ARCH:
        for sub, cin, cout, k, s, p in table or ():
            yield (f'{name}.{sub}' if sub else name), cin, cout, _pair(k), s, _pair(p)


def inception_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """The pytorch-fid FID Inception state dict: key -> shape (torch layouts; `num_batches_tracked` optional)."""
    out = collections.OrderedDict()
    for path, cin, cout, (kh, kw), _, _ in _conv_entries():
        out[f'{path}.conv.weight'] = (cout, cin, kh, kw)
        for stat in ('weight', 'bias', 'running_mean', 'running_var'):
            out[f'{path}.bn.{stat}'] = (cout,)
    out['fc.weight'] = (NUM_CLASSES, 2048)
    out['fc.bias'] = (NUM_CLASSES,)
    return out


# ----------------------------------------------------------------------------------------------------------
# Pieces: resize and pooling.


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] bilinear interpolation weights, torch `align_corners=False` (half-pixel, no antialias)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in), np.float64)
    np.add.at(m, (np.arange(n_out), i0), 1 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return m.astype(np.float32)


def resize_bilinear(x, size: int):
    """[N, H, W, C] float -> [N, size, size, C], separable bilinear (see `resize_matrix`)."""
    n, h, w, c = x.shape
    if (h, w) == (size, size):
        return x
    mh, mw = jnp.asarray(resize_matrix(h, size)), jnp.asarray(resize_matrix(w, size))
    x = jnp.einsum('oh,nhwc->nowc', mh, x, precision='highest')
    return jnp.einsum('pw,nowc->nopc', mw, x, precision='highest')


def avg_pool_3x3_exclude_pad(x):
    """3x3 stride-1 average pool with 1-pixel zero padding that the average does not count
    (torch `avg_pool2d(x, 3, 1, 1, count_include_pad=False)`, TF's 'SAME' avg-pool). x: [N, H, W, C]."""
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad)
    ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
    cnt = jax.lax.reduce_window(ones, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad)
    return s / cnt


def max_pool(x, stride: int = 2, padding: int = 0):
    """3x3 max pool with `stride`; padding pixels never win (torch `max_pool2d(x, 3, stride, padding)`)."""
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pad)


# ----------------------------------------------------------------------------------------------------------
# Flax modules (params mirror the state dict: kernel HWIO, BN scale/bias/mean/var).


class BasicConv(nn.Module):
    """Bias-free conv + inference BatchNorm (eps 1e-3) + ReLU. x: [N, H, W, cin] -> [N, H', W', cout]."""

    cin: int
    cout: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        z = nn.initializers.zeros
        k = self.param('kernel', nn.initializers.lecun_normal(), self.kernel + (self.cin, self.cout))
        scale = self.param('scale', nn.initializers.ones, (self.cout,))
        bias = self.param('bias', z, (self.cout,))
        mean = self.param('mean', z, (self.cout,))
        var = self.param('var', nn.initializers.ones, (self.cout,))
        ph, pw = self.padding
        y = jax.lax.conv_general_dilated(
            x, k, (self.stride, self.stride), [(ph, ph), (pw, pw)], dimension_numbers=_DN, precision='highest'
        )
        mul = scale * jax.lax.rsqrt(var + BN_EPS)
        return jax.nn.relu(y * mul + (bias - mean * mul))


class MixedBlock(nn.Module):
    """One Inception block; `kind` in A, B, C, D, E_1, E_2, `table` its convs (see `ARCH`)."""

    kind: str
    table: tuple

    @nn.compact
    def __call__(self, x):
        c = {sub: BasicConv(cin, cout, _pair(k), s, _pair(p), name=sub) for sub, cin, cout, k, s, p in self.table}
        if self.kind == 'A':
            b5 = c['branch5x5_2'](c['branch5x5_1'](x))
            b3 = c['branch3x3dbl_3'](c['branch3x3dbl_2'](c['branch3x3dbl_1'](x)))
            outs = [c['branch1x1'](x), b5, b3, c['branch_pool'](avg_pool_3x3_exclude_pad(x))]
        elif self.kind == 'B':
            b3 = c['branch3x3dbl_3'](c['branch3x3dbl_2'](c['branch3x3dbl_1'](x)))
            outs = [c['branch3x3'](x), b3, max_pool(x, 2)]
        elif self.kind == 'C':
            b7 = c['branch7x7_3'](c['branch7x7_2'](c['branch7x7_1'](x)))
            bd = x
            for i in range(1, 6):
                bd = c[f'branch7x7dbl_{i}'](bd)
            outs = [c['branch1x1'](x), b7, bd, c['branch_pool'](avg_pool_3x3_exclude_pad(x))]
        elif self.kind == 'D':
            b3 = c['branch3x3_2'](c['branch3x3_1'](x))
            b7 = x
            for i in range(1, 5):
                b7 = c[f'branch7x7x3_{i}'](b7)
            outs = [b3, b7, max_pool(x, 2)]
        else:  # E_1 (TF avg-pool) / E_2 (max pool)
            b3 = c['branch3x3_1'](x)
            b3 = jnp.concatenate([c['branch3x3_2a'](b3), c['branch3x3_2b'](b3)], -1)
            bd = c['branch3x3dbl_2'](c['branch3x3dbl_1'](x))
            bd = jnp.concatenate([c['branch3x3dbl_3a'](bd), c['branch3x3dbl_3b'](bd)], -1)
            pooled = avg_pool_3x3_exclude_pad(x) if self.kind == 'E_1' else max_pool(x, 1, 1)
            outs = [c['branch1x1'](x), b3, bd, c['branch_pool'](pooled)]
        return jnp.concatenate(outs, -1)


class InceptionNet(nn.Module):
    """FID Inception-v3. x: [N, 299, 299, 3] float in [-1, 1] -> {'features': [N, 2048], 'logits': [N, 1008]}."""

    @nn.compact
    def __call__(self, x):
        for name, kind, table in ARCH:
            if kind == 'maxpool':
                x = max_pool(x, 2)
            elif kind == 'conv':
                _, cin, cout, k, s, p = table[0]
                x = BasicConv(cin, cout, _pair(k), s, _pair(p), name=name)(x)
            else:
                x = MixedBlock(kind, tuple(table), name=name)(x)
        feats = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_CLASSES, name='fc', precision='highest')(feats)
        return {'features': feats, 'logits': logits}


@jax.jit
def _inception_apply(params, images):
    x = resize_bilinear(to_unit_range(images), FID_RESOLUTION)
    return InceptionNet().apply({'params': params}, x)


@flax.struct.dataclass
class InceptionV3:
    """FID Inception-v3 as a feature extractor (a pytree: `params` are leaves).

    __call__(images uint8 [N, H, W, 3] or float [-1, 1]) -> {'features': [N, 2048], 'logits': [N, 1008]};
    any input size (resized to 299x299). `resolution` is None: the extractor accepts every resolution.
    """

    params: Any
    resolution: int | None = flax.struct.field(pytree_node=False, default=None)
    name: str = flax.struct.field(pytree_node=False, default='inception')

    def __call__(self, images):
        images = jnp.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f'images must be [N, H, W, 3], got shape {tuple(images.shape)}')
        return _inception_apply(self.params, images)


# ----------------------------------------------------------------------------------------------------------
# Loading.


def _flatten(sd: Mapping, prefix: str = '') -> dict:
    out = {}
    for k, v in sd.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def inception_from_state_dict(sd: Mapping[str, Any], source: str = '<state dict>') -> InceptionV3:
    """pytorch-fid FID Inception state dict {key: array} -> `InceptionV3`; refuses missing, unexpected or
    mis-shaped keys with a `CheckpointError` naming the key."""
    if not isinstance(sd, Mapping):
        raise CheckpointError(f'{source}: expected a torch state dict (a mapping of tensors), got {type(sd).__name__}')
    if 'state_dict' in sd and isinstance(sd['state_dict'], Mapping):
        sd = sd['state_dict']
    sd = _flatten(sd)
    want = inception_state_dict_shapes()
    hint = f" (expected pytorch-fid's FID Inception weights, {FID_WEIGHTS_NAME})"
    for key, shape in want.items():
        if key not in sd:
            raise CheckpointError(f'{source}: missing key {key!r}{hint}')
        got = tuple(np.shape(sd[key]))
        if got != shape:
            extra = ''
            if key == 'fc.weight' and got[:1] == (1000,):
                extra = "; a 1000-class fc is torchvision's Inception, not the FID one"
            raise CheckpointError(f'{source}: key {key!r} has shape {got}, expected {shape}{extra}{hint}')
    unexpected = sorted(k for k in sd if k not in want and not k.endswith('.num_batches_tracked'))
    if unexpected:
        more = f' (and {len(unexpected) - 1} more)' if len(unexpected) > 1 else ''
        raise CheckpointError(f'{source}: unexpected key {unexpected[0]!r}{more}{hint}')

    def arr(key):
        return np.asarray(sd[key], np.float32)

    params: dict = {}
    for path, *_ in _conv_entries():
        node = params
        for part in path.split('.'):
            node = node.setdefault(part, {})
        node['kernel'] = jnp.asarray(arr(f'{path}.conv.weight').transpose(2, 3, 1, 0))
        node['scale'] = jnp.asarray(arr(f'{path}.bn.weight'))
        node['bias'] = jnp.asarray(arr(f'{path}.bn.bias'))
        node['mean'] = jnp.asarray(arr(f'{path}.bn.running_mean'))
        node['var'] = jnp.asarray(arr(f'{path}.bn.running_var'))
    params['fc'] = {'kernel': jnp.asarray(arr('fc.weight').T), 'bias': jnp.asarray(arr('fc.bias'))}
    return InceptionV3(params)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> InceptionV3:
    return inception_from_state_dict(load_torch(path), source=path)


def load_inception(path) -> InceptionV3:
    """Read pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` torch-free (cached per path and mtime)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Inception weights not found: {path} (pytorch-fid's {FID_WEIGHTS_NAME})")
    return _load_cached(os.path.abspath(path), os.path.getmtime(path))


def random_inception(seed: int = 0) -> dict:
    """A state dict with the FID Inception's keys and shapes and random values (numpy float32), for tests:
    He-scaled conv weights and BN statistics that keep activations O(1) through the network."""
    rnd = np.random.RandomState(seed)
    sd = collections.OrderedDict()
    for key, shape in inception_state_dict_shapes().items():
        if key.endswith('conv.weight'):
            fan_in = int(np.prod(shape[1:]))
            v = rnd.randn(*shape) * np.sqrt(2.0 / fan_in)
        elif key.endswith('bn.weight'):
            v = rnd.uniform(0.6, 1.2, shape)
        elif key.endswith('running_var'):
            v = rnd.uniform(0.5, 1.5, shape)
        elif key.endswith('running_mean'):
            v = rnd.randn(*shape) * 0.1
        elif key == 'fc.weight':
            v = rnd.randn(*shape) / np.sqrt(shape[1])
        else:
            v = rnd.randn(*shape) * 0.1
        sd[key] = v.astype(np.float32)
    return sd
