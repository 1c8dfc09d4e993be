"""Blending two aligned generators' synthesis weights: materialised (lerp / per-resolution layer swap) or fused.

`lerp_variables(a, b, t)` and `blend_variables(a, b, alphas)` build one generator's variables;
`pair_synthesis(...)` renders a batch where every sample has its own blend coefficient without building
per-sample weights. It uses the linearity of every weighted op in the weights:

    conv(x, (1 - t) Wa + t Wb) = (1 - t) conv(x, Wa) + t conv(x, Wb)      (one conv with [Wa | Wb] stacked
                                                                              on the output axis)
    affine(w; (1 - t) A + t B) = (1 - t) affine(w; A) + t affine(w; B)
    demodulation: sum_k ((1 - t) Wa + t Wb)^2 = (1 - t)^2 Sa + 2 t (1 - t) Sab + t^2 Sb   (per sample, exact)

so a batch of frames with different weights costs two shared-weight convolutions instead of one grouped
convolution per frame (grouped convolutions are very slow on XLA:CPU and slower than dense ones on GPU).
The forward pass mirrors `alignjax.nn.networks.SynthesisNetwork` (float32 compute).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from alignjax.nn import networks as N
from alignjax.nn import ops


def _lerp(a, b, t):
    return (1 - t) * a + t * b   # exact at t = 0 and t = 1


def lerp_variables(vars_a, vars_b, t, mapping_from: str = 'a'):
    """Variables with every synthesis parameter and noise buffer lerped (t=0: a, t=1: b); mapping parameters
    and w_avg taken from `mapping_from` ('a' or 'b') unchanged."""
    src = vars_a if mapping_from == 'a' else vars_b
    out = {'params': dict(src['params']), 'buffers': dict(src.get('buffers', {}))}
    out['params']['synthesis'] = jax.tree_util.tree_map(lambda x, y: _lerp(x, y, t), vars_a['params']['synthesis'],
                                                        vars_b['params']['synthesis'])
    if 'synthesis' in vars_a.get('buffers', {}):
        out['buffers']['synthesis'] = jax.tree_util.tree_map(lambda x, y: _lerp(x, y, t),
                                                             vars_a['buffers']['synthesis'],
                                                             vars_b['buffers']['synthesis'])
    return out


def blend_variables(vars_a, vars_b, alphas: dict, mapping_from: str = 'a'):
    """Per-resolution blend: block b{res} gets (1 - alphas[res]) * a + alphas[res] * b (params and noise
    buffers); mapping and w_avg from `mapping_from`."""
    src = vars_a if mapping_from == 'a' else vars_b
    out = {'params': dict(src['params']), 'buffers': dict(src.get('buffers', {}))}
    syn = {}
    for block, pa in vars_a['params']['synthesis'].items():
        t = alphas[int(block[1:])]
        syn[block] = jax.tree_util.tree_map(lambda x, y: _lerp(x, y, t), pa, vars_b['params']['synthesis'][block])
    out['params']['synthesis'] = syn
    if 'synthesis' in vars_a.get('buffers', {}):
        buf = {}
        for block, ba in vars_a['buffers']['synthesis'].items():
            t = alphas[int(block[1:])]
            buf[block] = jax.tree_util.tree_map(lambda x, y: _lerp(x, y, t), ba,
                                                vars_b['buffers']['synthesis'][block])
        out['buffers']['synthesis'] = buf
    return out


def check_compatible(a, b, what='generators'):
    """Raise unless a and b (Generators) have the same architecture and parameter shapes."""
    # the compute implementation (impl: dtype, op variants) is how a model runs, not what it is
    ca = a.config.replace(impl=N.Impl()).to_dict()
    cb = b.config.replace(impl=N.Impl()).to_dict()
    if ca != cb:
        diff = ', '.join(f'{k} {ca.get(k)!r} vs {cb.get(k)!r}' for k in ca if ca.get(k) != cb.get(k))
        raise ValueError(f'{what} are not aligned (not a parent and its fine-tuned child): architectures '
                         f'differ in {diff}')
    la = jax.tree_util.tree_leaves_with_path(a.variables['params']['synthesis'])
    lb = dict(jax.tree_util.tree_leaves_with_path(b.variables['params']['synthesis']))
    for path, leaf in la:
        other = lb.get(path)
        if other is None or jnp.shape(other) != jnp.shape(leaf):
            name = jax.tree_util.keystr(path)
            raise ValueError(f'{what} are not aligned: synthesis parameter {name} has shape {jnp.shape(leaf)} vs '
                             f'{None if other is None else jnp.shape(other)}')


def weight_correlation(a, b) -> float:
    """Correlation of the two generators' synthesis conv weights (all layers together): about 1 for a parent
    and a child fine-tuned from it, about 0 for unrelated models (e.g. two trained from scratch)."""
    import numpy as np
    wa, wb = [], []
    for (_, x), (_, y) in zip(jax.tree_util.tree_leaves_with_path(a.variables['params']['synthesis']),
                              jax.tree_util.tree_leaves_with_path(b.variables['params']['synthesis'])):
        if np.ndim(x) == 4:
            wa.append(np.asarray(x, np.float64).ravel())
            wb.append(np.asarray(y, np.float64).ravel())
    if not wa:
        return 1.0
    x, y = np.concatenate(wa), np.concatenate(wb)
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 1.0 if np.array_equal(x, y) else 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


# ----------------------------------------------------------------------------------------------------------
# Fused two-endpoint synthesis.

def _affine(p, w):
    """FullyConnected(w_dim -> in) as alignjax.nn.networks (lr_mul 1, bias stored with its +1 init)."""
    k = p['weight'] * (1 / math.sqrt(p['weight'].shape[0]))
    return jnp.dot(w, k, precision=jax.lax.Precision.HIGHEST) + p['bias']


def _per_sample(t, x):
    return t.reshape((-1,) + (1,) * (x.ndim - 1))


def _pair_layer(cfg, spec, pa, pb, x, w, t, noise):
    """One modulated layer for per-sample blend t [B]; x [B, H, W, I] -> [B, H', W', O]."""
    f = ops.setup_filter(cfg.resample_filter)
    s = _lerp(_affine(pa['affine'], w), _affine(pb['affine'], w), t[:, None])           # [B, I]
    wa, wb = pa['weight'], pb['weight']
    o = wa.shape[-1]
    if spec.kind == 'torgb':
        s = s * (1 / math.sqrt(spec.in_channels))
    y = ops.conv2d_resample(x * s[:, None, None, :], jnp.concatenate([wa, wb], axis=-1), f, up=spec.up,
                            padding=1 if spec.kind == 'conv' else 0, fir_impl=cfg.impl.fir, up_impl=cfg.impl.upconv)
    tt = _per_sample(t, y)
    y = _lerp(y[..., :o], y[..., o:], tt)
    bias = _lerp(pa['bias'][None], pb['bias'][None], t[:, None])                        # [B, O]
    if spec.kind == 'torgb':
        y = y + bias[:, None, None, :]
        if cfg.conv_clamp is not None:
            y = jnp.clip(y, -cfg.conv_clamp, cfg.conv_clamp)
        return y
    s2 = jnp.square(s)
    hi = jax.lax.Precision.HIGHEST
    saa = jnp.dot(s2, jnp.sum(wa * wa, axis=(0, 1)), precision=hi)
    sab = jnp.dot(s2, jnp.sum(wa * wb, axis=(0, 1)), precision=hi)
    sbb = jnp.dot(s2, jnp.sum(wb * wb, axis=(0, 1)), precision=hi)
    tc = t[:, None]
    d = jax.lax.rsqrt(jnp.square(1 - tc) * saa + 2 * tc * (1 - tc) * sab + jnp.square(tc) * sbb + 1e-8)
    y = y * d[:, None, None, :]
    if noise is not None:
        strength = _lerp(pa['noise_strength'], pb['noise_strength'], t)
        y = y + (noise * _per_sample(strength, noise))[..., None]
    y = y + bias[:, None, None, :]
    y = jnp.where(y >= 0, y, y * 0.2) * ops.LRELU_GAIN
    if cfg.conv_clamp is not None:
        c = cfg.conv_clamp * ops.LRELU_GAIN
        y = jnp.clip(y, -c, c)
    return y


def pair_synthesis(cfg, params_a, params_b, ws, noise, t):
    """Images [B, H, W, C] of generators blended per sample: (1 - t) * a + t * b in every synthesis weight.

    params_a / params_b: the two `variables['params']['synthesis']` trees; ws [B, num_ws, w_dim];
    noise {layer: [B, r, r]} explicit unit-variance maps (every noise layer); t [B], or [B, n_blocks] for a
    per-resolution blend (column j for block resolution 4 * 2**j).
    """
    specs = N.synthesis_layers(cfg)
    t = jnp.asarray(t, jnp.float32)
    if t.ndim == 1:
        t = jnp.broadcast_to(t[:, None], (t.shape[0], len(cfg.block_resolutions)))
    img = x = None
    for j, res in enumerate(cfg.block_resolutions):
        tj = t[:, j]
        blk_a, blk_b = params_a[f'b{res}'], params_b[f'b{res}']
        for s in (s for s in specs if s.res == res):
            layer = s.name.split('.')[1]
            if s.kind == 'conv':
                if x is None:
                    c = _lerp(blk_a['const'][None], blk_b['const'][None], _per_sample(tj, blk_a['const'][None]))
                    x = jnp.broadcast_to(c, (ws.shape[0],) + blk_a['const'].shape)
                x = _pair_layer(cfg, s, blk_a[layer], blk_b[layer], x, ws[:, s.w_index], tj, noise.get(s.name))
            else:
                if img is not None:
                    img = ops.upsample2d(img, ops.setup_filter(cfg.resample_filter), impl=cfg.impl.fir)
                y = _pair_layer(cfg, s, blk_a[layer], blk_b[layer], x, ws[:, s.w_index], tj, None)
                img = y if img is None else img + y
    return img


@functools.partial(jax.jit, static_argnames=('cfg',))
def pair_synthesis_jit(cfg, params_a, params_b, ws, noise, t):
    return pair_synthesis(cfg, params_a, params_b, ws, noise, t)
