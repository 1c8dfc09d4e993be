"""LPIPS (VGG16 trunk, v0.1 linear heads) in pure JAX, with weights read from the user's own files.

Semantics follow the `lpips` package (Zhang et al. 2018, `lpips.LPIPS(net='vgg', version='0.1')`):

    x in [-1, 1] -> (x - shift) / scale -> VGG16 `features` -> relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    each tap: unit-normalise over channels (x / (||x||_2 + 1e-10)), squared difference, 1x1 linear head
    (non-negative weights, no bias), spatial mean; the five layers are summed.

Weights (nothing is downloaded; both files are read by the torch-free `alignjax.io.torch_file.load_torch`):
  * VGG16: a torchvision state dict (`vgg16-397923af.pth`: keys `features.{0,2,5,...,28}.{weight,bias}`,
    the `classifier.*` keys are ignored), or an `lpips` model state dict (`net.slice{k}.{i}.*`).
  * heads: the lpips package's `lpips/weights/v0.1/vgg.pth` (keys `lin{k}.model.1.weight`, [1, C, 1, 1]).

Images larger than 256 px are area-downsampled to 256 first, as NVlabs `projector.py` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.errors import InputError
from alignjax.io.torch_file import load_torch

# torchvision vgg16 `features` indices of the 13 convs; a 2x2 max-pool follows the convs marked below.
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_CHANNELS = (
    (3, 64),
    (64, 64),
    (64, 128),
    (128, 128),
    (128, 256),
    (256, 256),
    (256, 256),
    (256, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
)
_TAP_AFTER = (1, 3, 6, 9, 12)  # conv index (0-based among the 13) whose relu output is an LPIPS tap
_POOL_BEFORE = (2, 4, 7, 10)  # a max-pool precedes these convs
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
_DN = ('NHWC', 'HWIO', 'NHWC')


def area_resize(img, size: int):
    """Average-pool [N, H, W, C] down to [N, size, size, C] (H a multiple of size), as F.interpolate 'area'."""
    n, h, w, c = img.shape
    if h == size and w == size:
        return img
    if h % size or w % size:
        raise InputError(f'area resize needs a multiple of {size}, got {h}x{w}')
    fh, fw = h // size, w // size
    return img.reshape(n, size, fh, size, fw, c).mean(axis=(2, 4))


def vgg16_taps(params, x):
    """VGG16 `features` on NHWC x (already scaled); returns the five relu taps."""
    taps = []
    for i, (w, b) in enumerate(params):
        if i in _POOL_BEFORE:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID')
        x = jax.lax.conv_general_dilated(
            x, w, (1, 1), [(1, 1), (1, 1)], dimension_numbers=_DN, precision=jax.lax.Precision.HIGHEST
        )
        x = jax.nn.relu(x + b)
        if i in _TAP_AFTER:
            taps.append(x)
    return taps


def _unit(x, eps=1e-10):
    return x / (jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True)) + eps)


@flax.struct.dataclass
class LPIPS:
    """LPIPS(VGG16) as a pytree: `vgg` = 13 (kernel HWIO, bias) pairs, `lin` = 5 head weight vectors.

    features(img [N, H, W, 3] in [-1, 1]) -> list of unit-normalised taps; distance(fa, fb) -> [N];
    __call__(a, b) -> [N]. Pass the object to jitted functions as an argument (it is a pytree).
    """

    vgg: Any
    lin: Any
    max_size: int = flax.struct.field(pytree_node=False, default=256)

    def features(self, img):
        img = jnp.asarray(img, jnp.float32)
        if img.shape[1] > self.max_size:
            img = area_resize(img, self.max_size)
        x = (img - _SHIFT) / _SCALE
        return [_unit(t) for t in vgg16_taps(self.vgg, x)]

    def distance(self, fa, fb):
        total = 0.0
        for a, b, w in zip(fa, fb, self.lin):
            total = total + jnp.mean(jnp.square(a - b) @ w, axis=(1, 2))
        return total

    def __call__(self, a, b):
        return self.distance(self.features(a), self.features(b))


# ----------------------------------------------------------------------------------------------------------
# Loading.


def _flatten(sd, prefix=''):
    """Nested dicts (or an OrderedDict state dict) -> {dotted key: array}."""
    out = {}
    for k, v in sd.items():
        key = f'{prefix}{k}'
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + '.'))
        else:
            out[key] = v
    return out


def _state_dict(obj, what: str, path) -> dict:
    if isinstance(obj, Mapping):
        for k in ('state_dict', 'model', 'net'):
            if k in obj and isinstance(obj[k], Mapping) and not any(isinstance(v, np.ndarray) for v in obj.values()):
                obj = obj[k]
                break
        return _flatten(obj)
    raise InputError(f'{path}: expected a state dict for {what}, got {type(obj).__name__}')


def _vgg_from_state_dict(sd: Mapping[str, Any], path) -> list:
    """torchvision (`features.N.*`) or lpips (`net.sliceK.N.*`) keys -> 13 (HWIO kernel, bias) pairs."""
    by_index = {}
    for k, v in sd.items():
        m = re.search(r'(?:^|\.)(?:features|slice\d)\.(\d+)\.(weight|bias)$', k)
        if m:
            by_index.setdefault(int(m.group(1)), {})[m.group(2)] = np.asarray(v, np.float32)
    missing = [i for i in VGG16_CONVS if i not in by_index or len(by_index[i]) != 2]
    if missing:
        raise InputError(
            f'{path}: not a VGG16 state dict: no weight/bias for features.{missing} '
            f'(expected torchvision vgg16 keys features.{{0,2,5,...,28}}.weight/bias)'
        )
    params = []
    for i, (cin, cout) in zip(VGG16_CONVS, VGG16_CHANNELS):
        w, b = by_index[i]['weight'], by_index[i]['bias']
        if w.shape != (cout, cin, 3, 3) or b.shape != (cout,):
            raise InputError(f'{path}: features.{i}.weight has shape {w.shape}, expected {(cout, cin, 3, 3)}')
        params.append((jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b)))
    return params


def _lin_from_state_dict(sd: Mapping[str, Any], path) -> list:
    lins = {}
    for k, v in sd.items():
        m = re.search(r'(?:^|\.)lin(\d)\.(?:model\.\d+\.)?weight$', k)
        if m:
            lins[int(m.group(1))] = np.asarray(v, np.float32)
    if sorted(lins) != list(range(5)):
        raise InputError(
            f'{path}: expected LPIPS heads lin0..lin4 (keys lin{{k}}.model.1.weight), found {sorted(lins)}'
        )
    out = []
    for k, c in enumerate(LPIPS_CHANNELS):
        w = lins[k].reshape(-1)
        if w.size != c:
            raise InputError(f'{path}: lin{k} has {w.size} weights, expected {c} (VGG16 heads)')
        out.append(jnp.asarray(w))
    return out


def lpips_from_state_dicts(vgg_sd: Mapping[str, Any], lin_sd: Mapping[str, Any], max_size: int = 256) -> LPIPS:
    """LPIPS from in-memory state dicts (numpy / jax arrays keyed as in the torch files)."""
    return LPIPS(
        _vgg_from_state_dict(_flatten(vgg_sd), '<vgg state dict>'),
        _lin_from_state_dict(_flatten(lin_sd), '<lin state dict>'),
        max_size=max_size,
    )


def load_lpips(vgg_path, lin_path=None, max_size: int = 256) -> LPIPS:
    """LPIPS(VGG16) from a torchvision VGG16 state-dict file and the lpips package's `vgg.pth` heads.

    `lin_path` may be omitted when `vgg_path` is a full lpips model state dict holding both trunk
    (`net.slice*`) and heads (`lin*`). Files are read without torch.
    """
    vgg_path = os.fspath(vgg_path)
    vgg_sd = _state_dict(load_torch(vgg_path), 'VGG16', vgg_path)
    vgg = _vgg_from_state_dict(vgg_sd, vgg_path)
    if lin_path is None:
        lin = _lin_from_state_dict(vgg_sd, vgg_path)
    else:
        lin_path = os.fspath(lin_path)
        lin = _lin_from_state_dict(_state_dict(load_torch(lin_path), 'LPIPS heads', lin_path), lin_path)
    return LPIPS(vgg, lin, max_size=max_size)
