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
The forward pass is `alignjax.nn.layers.synthesis_block`, the function the flax modules call.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.errors import InputError
from alignjax.nn import layers
from alignjax.nn import networks as N

_lerp = layers.lerp


def lerp_variables(vars_a, vars_b, t, mapping_from: str = 'a'):
    """Variables with every synthesis parameter and noise buffer lerped (t=0: a, t=1: b); mapping parameters
    and w_avg taken from `mapping_from` ('a' or 'b') unchanged."""
    src = vars_a if mapping_from == 'a' else vars_b
    out = {'params': dict(src['params']), 'buffers': dict(src.get('buffers', {}))}
    out['params']['synthesis'] = jax.tree_util.tree_map(
        lambda x, y: _lerp(x, y, t), vars_a['params']['synthesis'], vars_b['params']['synthesis']
    )
    if 'synthesis' in vars_a.get('buffers', {}):
        out['buffers']['synthesis'] = jax.tree_util.tree_map(
            lambda x, y: _lerp(x, y, t), vars_a['buffers']['synthesis'], vars_b['buffers']['synthesis']
        )
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
            buf[block] = jax.tree_util.tree_map(lambda x, y: _lerp(x, y, t), ba, vars_b['buffers']['synthesis'][block])
        out['buffers']['synthesis'] = buf
    return out


def check_compatible(a, b, what='generators'):
    """Raise unless a and b (Generators) have the same architecture and parameter shapes."""
    # the compute implementation (impl: dtype, op variants) is how a model runs, not what it is
    ca = a.config.replace(impl=N.Impl()).to_dict()
    cb = b.config.replace(impl=N.Impl()).to_dict()
    if ca != cb:
        diff = ', '.join(f'{k} {ca.get(k)!r} vs {cb.get(k)!r}' for k in ca if ca.get(k) != cb.get(k))
        raise InputError(
            f'{what} are not aligned (not a parent and its fine-tuned child): architectures differ in {diff}'
        )
    la = jax.tree_util.tree_leaves_with_path(a.variables['params']['synthesis'])
    lb = dict(jax.tree_util.tree_leaves_with_path(b.variables['params']['synthesis']))
    for path, leaf in la:
        other = lb.get(path)
        if other is None or jnp.shape(other) != jnp.shape(leaf):
            name = jax.tree_util.keystr(path)
            raise InputError(
                f'{what} are not aligned: synthesis parameter {name} has shape {jnp.shape(leaf)} vs '
                f'{None if other is None else jnp.shape(other)}'
            )


def weight_correlation(a, b) -> float:
    """Correlation of the two generators' synthesis conv weights (all layers together): about 1 for a parent
    and a child fine-tuned from it, about 0 for unrelated models (e.g. two trained from scratch)."""
    wa, wb = [], []
    for (_, x), (_, y) in zip(
        jax.tree_util.tree_leaves_with_path(a.variables['params']['synthesis']),
        jax.tree_util.tree_leaves_with_path(b.variables['params']['synthesis']),
    ):
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


def pair_synthesis(cfg, params_a, params_b, ws, noise, t):
    """Images [B, H, W, C] of generators blended per sample: (1 - t) * a + t * b in every synthesis weight.

    params_a / params_b: the two `variables['params']['synthesis']` trees; ws [B, num_ws, w_dim];
    noise {layer: [B, r, r]} explicit unit-variance maps (every noise layer); t [B], or [B, n_blocks] for a
    per-resolution blend (column j for block resolution 4 * 2**j). The layers are `alignjax.nn.layers`' (the
    ones the flax modules run), fed with `Blend` params, so `cfg.impl` (dtype, op variants) and `cfg.conv_clamp`
    apply as in `Generator.synthesis`.
    """
    specs = N.synthesis_weights(cfg)  # every architecture: a resnet block's skip conv is blended too
    t = jnp.asarray(t, jnp.float32)
    if t.ndim == 1:
        t = jnp.broadcast_to(t[:, None], (t.shape[0], len(cfg.block_resolutions)))
    img = x = None
    for j, res in enumerate(cfg.block_resolutions):
        p = layers.blend_params(params_a[f'b{res}'], params_b[f'b{res}'], t[:, j])
        block = tuple(s for s in specs if s.res == res)
        styles = {s.name: layers.dense(p[s.layer]['affine'], ws[:, s.w_index]) for s in block if s.kind != 'skip'}
        x, img = layers.synthesis_block(
            p,
            x,
            img,
            styles,
            noise,
            block,
            impl=cfg.impl,
            conv_clamp=cfg.conv_clamp,
            resample_filter=cfg.resample_filter,
        )
    return img


@functools.partial(jax.jit, static_argnames=('cfg',))
def pair_synthesis_jit(cfg, params_a, params_b, ws, noise, t):
    return pair_synthesis(cfg, params_a, params_b, ws, noise, t)
