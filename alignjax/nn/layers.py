"""The synthesis layers as pure functions over param dicts: one definition for every caller.

The flax modules in `alignjax.nn.networks` hand their parameters to these functions, and the fused morph
(`alignjax.apps.blend.pair_synthesis`) hands them two generators' parameters blended per sample
(`blend_params`), so both honour `Impl` (compute dtype, op variants) and `conv_clamp` the same way.

A `Blend` leaf stands for (1 - t) * a + t * b with one t per sample. Every weighted op is linear in its weights,
so blends are never materialised per sample: dense layers lerp their two outputs, and the modulated conv runs
one conv with both kernels stacked (`ops.blended_modulated_conv2d`, exact per-sample demodulation).

Shapes: x [N, H, W, C] in the compute dtype; styles [N, C_in] float32; img [N, H, W, img_channels] float32;
params in our layouts (dense [in, out], conv [k, k, in, out], const [4, 4, C]).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from alignjax.nn import ops


@dataclasses.dataclass(frozen=True)
class Blend:
    """A parameter blended per sample: (1 - t) * a + t * b, t [N] float32."""

    a: Any
    b: Any
    t: Any


def blend_params(params_a, params_b, t):
    """The param tree whose every leaf is `Blend(a, b, t)`."""
    return jax.tree_util.tree_map(lambda a, b: Blend(a, b, t), params_a, params_b)


def lerp(a, b, t):
    return (1 - t) * a + t * b  # exact at t = 0 and t = 1


def _per_sample(t, ndim: int):
    return t.reshape((-1,) + (1,) * (ndim - 1))


def compute_dtype(impl):
    """The activation dtype of `Impl.dtype` ('float32' | 'bfloat16')."""
    return {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[impl.dtype]


def dense(p, x, *, lr_mul: float = 1.0, activation: str = 'linear'):
    """Equalised-lr dense layer: x [N, in] -> [N, out] = act(x @ (W * lr_mul / sqrt(in)) + b * lr_mul), float32.
    p: {'weight': [in, out], 'bias': [out]} (a blended p needs a linear activation)."""
    w, b = p['weight'], p['bias']
    if isinstance(w, Blend):
        if activation != 'linear':
            raise ValueError('a blended dense layer must be linear')
        ya = dense({'weight': w.a, 'bias': b.a}, x, lr_mul=lr_mul)
        yb = dense({'weight': w.b, 'bias': b.b}, x, lr_mul=lr_mul)
        return lerp(ya, yb, w.t[:, None])
    w = w * (lr_mul / math.sqrt(w.shape[0]))
    x = jnp.dot(x.astype(jnp.float32), w, precision=jax.lax.Precision.HIGHEST)
    return ops.bias_act(x, b * lr_mul, activation)


def _bias_act(x, b, act: str, clamp, gain: float | None = None):
    if isinstance(b, Blend):  # per-sample bias [N, C]
        bias = lerp(b.a[None], b.b[None], b.t[:, None])
        x, b = x + bias.astype(x.dtype)[:, None, None, :], None
    return ops.bias_act(x, b, act, gain=gain, clamp=clamp)


def modconv(x, weight, styles, *, impl, demodulate=True, up=1, padding=0, f=None, noise=None):
    """`ops.modulated_conv2d` (variant `impl.modconv`), or `ops.blended_modulated_conv2d` for a `Blend` weight."""
    if isinstance(weight, Blend):
        return ops.blended_modulated_conv2d(
            x,
            weight.a,
            weight.b,
            weight.t,
            styles,
            demodulate=demodulate,
            up=up,
            padding=padding,
            f=f,
            noise=noise,
            fir_impl=impl.fir,
            up_impl=impl.upconv,
            wgrad=impl.wgrad,
        )
    return ops.modulated_conv2d(
        x,
        weight,
        styles,
        demodulate=demodulate,
        up=up,
        padding=padding,
        f=f,
        noise=noise,
        impl=impl.modconv,
        fir_impl=impl.fir,
        up_impl=impl.upconv,
        wgrad=impl.wgrad,
    )


def modulated_layer(p, x, style, spec, *, impl, conv_clamp, resample_filter, noise=None, gain: float = 1.0):
    """Modulated 3x3 conv (2x up for conv0) + noise + bias + lrelu: x [N, H, W, I] -> [N, H*up, W*up, O].

    p: {'weight': [3, 3, I, O], 'bias': [O], 'noise_strength': []}; style [N, I];
    noise: unit-variance maps [N or 1, H*up, W*up] (scaled here by noise_strength), or None.
    As NVlabs `SynthesisLayer`: the output is lrelu(x + b) * sqrt(2) * gain, then clamped to +-conv_clamp * gain
    (`bias_act` clamps after the gain; gain is 1 in the skip generator, so the clamp is conv_clamp itself).
    """
    if noise is not None:
        strength = p['noise_strength']
        if isinstance(strength, Blend):
            strength = _per_sample(lerp(strength.a, strength.b, strength.t), noise.ndim)
        noise = (noise * strength)[..., None]
    x = modconv(
        x, p['weight'], style, impl=impl, up=spec.up, padding=1, f=ops.setup_filter(resample_filter), noise=noise
    )
    clamp = None if conv_clamp is None else conv_clamp * gain
    return _bias_act(x, p['bias'], 'lrelu', clamp, gain=ops.LRELU_GAIN * gain)


def torgb_layer(p, x, style, spec, *, impl, conv_clamp):
    """Modulated 1x1 conv without demodulation + bias: x [N, H, W, I] -> [N, H, W, img_channels], clamped to
    +-conv_clamp (NVlabs `ToRGBLayer`). p: {'weight': [1, 1, I, C], 'bias': [C]}; style [N, I] (before ToRGB's
    weight gain 1 / sqrt(I))."""
    style = style * (1 / math.sqrt(spec.in_channels))
    x = modconv(x, p['weight'], style, impl=impl, demodulate=False)
    return _bias_act(x, p['bias'], 'linear', conv_clamp)


def skip_layer(p, x, spec, *, impl, resample_filter):
    """The resnet generator's skip: 1x1 conv (no bias) + 2x FIR up, at gain sqrt(1/2) and never clamped (NVlabs
    builds it without conv_clamp): x [N, h, w, I] -> [N, 2h, 2w, O]. p: {'weight': [1, 1, I, O]}."""
    f = ops.setup_filter(resample_filter)

    def conv(w):
        w = w * (1 / math.sqrt(spec.in_channels * spec.kernel**2))
        return ops.conv2d_resample(x, w, f, up=2, fir_impl=impl.fir, up_impl=impl.upconv, wgrad=impl.wgrad)

    w = p['weight']
    if isinstance(w, Blend):  # linear in the weight: lerp the two outputs per sample
        t = _per_sample(w.t, 4)
        y = lerp(conv(w.a).astype(jnp.float32), conv(w.b).astype(jnp.float32), t).astype(x.dtype)
    else:
        y = conv(w)
    return ops.bias_act(y, None, 'linear', gain=math.sqrt(0.5))


def _const(c, n: int, dtype):
    if isinstance(c, Blend):
        return lerp(c.a[None], c.b[None], _per_sample(c.t, 4)).astype(dtype)
    return jnp.broadcast_to(c.astype(dtype)[None], (n,) + c.shape)


def synthesis_block(p, x, img, styles, noises, specs, *, impl, conv_clamp, resample_filter):
    """One resolution of the generator (NVlabs `SynthesisBlock`, any architecture; the block's specs say which):
    [const] conv0 (2x up) conv1, then the image: the incoming one (skip G) FIR-upsampled, plus this block's
    ToRGB where it has one (every block of a skip G, the last of orig / resnet). A resnet block adds its skip
    conv of the block input to conv1's output, both at gain sqrt(1/2).
    p: {'const' (4x4 only), 'conv0', 'conv1', 'torgb', 'skip'} (those the block has); specs: the block's
    `LayerSpec`s (`arch.synthesis_weights`); styles {layer name: [N, I]}; noises {layer name: map} (layers without
    one get no noise); x [N, h, w, C] or None (4x4 block); img [N, h, w, img_channels] float32 or None.
    Returns (x, img)."""
    dtype = compute_dtype(impl)
    skip = next((s for s in specs if s.kind == 'skip'), None)
    residual = None if skip is None else skip_layer(p[skip.layer], x, skip, impl=impl, resample_filter=resample_filter)
    for s in specs:
        if s.kind != 'conv':
            continue
        if x is None:
            x = _const(p['const'], styles[s.name].shape[0], dtype)
        gain = math.sqrt(0.5) if residual is not None and s.layer == 'conv1' else 1.0
        x = modulated_layer(
            p[s.layer],
            x,
            styles[s.name],
            s,
            impl=impl,
            conv_clamp=conv_clamp,
            resample_filter=resample_filter,
            noise=noises.get(s.name),
            gain=gain,
        )
    if residual is not None:
        x = residual + x
    if img is not None:
        img = ops.upsample2d(img, ops.setup_filter(resample_filter), impl=impl.fir)
    for s in specs:
        if s.kind == 'torgb':
            y = torgb_layer(p[s.layer], x, styles[s.name], s, impl=impl, conv_clamp=conv_clamp).astype(jnp.float32)
            img = y if img is None else img + y
    return x, img
