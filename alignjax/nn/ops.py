"""Low-level StyleGAN2 ops in pure JAX, NHWC throughout.

Every op has the semantics of its counterpart in NVlabs stylegan2-ada-pytorch (`torch_utils/ops`,
`training/networks.py`); layouts differ: activations are NHWC, conv kernels HWIO, dense kernels [in, out].

Two implementations are kept where speed matters, selected by a static `impl` string:
  FIR filtering   'polyphase' (separable pads/slices; fast on every backend) | 'depthwise' (reference).
  up-sampling conv 'split'    (one conv per output phase: 2x2, 2x1, 1x2, 1x1 kernels, pixel shuffle, FIR)
                   | 'phase'  (the four phases in one 2x2 conv)  | 'upfir' (FIR-upsample, then a plain 3x3 conv)
                   | 'transpose' (NVlabs order: transposed conv, then FIR; the reference).
  down-sampling conv 'split'  (FIR, space-to-depth, one conv per input phase) | 's2d' (one conv over the 4C
                              phase channels) | 'strided' (FIR, stride-2 conv; the reference).
  modulated conv  'shared'    (scale inputs by styles, one conv with the shared kernel, scale outputs by the
                              demodulation coefficients)                     | 'grouped' (per-sample kernels
                              in one grouped conv; the reference, NVlabs' fused_modconv).
All agree to float rounding (tests/test_nn_ops.py); defaults are chosen by bench/generator.py and bench/train.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

LRELU_GAIN = math.sqrt(2.0)
_DN = ('NHWC', 'HWIO', 'NHWC')


# ----------------------------------------------------------------------------------------------------------
# Activation.


def bias_act(x, b=None, act: str = 'linear', gain: float | None = None, clamp: float | None = None, axis=-1):
    """x + b, then activation ('linear' | 'lrelu' with slope 0.2), times gain, clamped to [-clamp, clamp].

    gain defaults to sqrt(2) for lrelu and 1 for linear, as NVlabs `bias_act`.
    """
    if b is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        x = x + b.astype(x.dtype).reshape(shape)
    if act == 'lrelu':
        x = jnp.where(x >= 0, x, x * 0.2)
        gain = LRELU_GAIN if gain is None else gain
    elif act != 'linear':
        raise ValueError(f'unknown activation {act!r}')
    gain = 1.0 if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = jnp.clip(x, -clamp, clamp)
    return x


def normalize_2nd_moment(x, axis=1, eps=1e-8):
    """x / sqrt(mean(x^2) + eps) along axis."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


# ----------------------------------------------------------------------------------------------------------
# FIR filtering: upfirdn2d (zero-insert by `up`, pad, true convolution with f, keep every `down`-th sample).


def setup_filter(f: Sequence[float]) -> np.ndarray:
    """Normalised 1-D filter taps (the 2-D filter is their outer product, summing to 1)."""
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f'resample filter must be a non-empty 1-D sequence, got shape {f.shape}')
    return (f / f.sum()).astype(np.float32)


def _fir_axis(x, axis: int, f: np.ndarray, up: int, down: int, p0: int, p1: int):
    """Separable upfirdn along one axis with static taps `f` (already flipped and gained)."""
    n, k = x.shape[axis], len(f)
    if up == 1:
        x = _pad_axis(x, axis, p0, p1)
        out_len = (x.shape[axis] - k) // down + 1
        y = None
        for m in range(k):
            s = jax.lax.slice_in_dim(x, m, m + (out_len - 1) * down + 1, down, axis) * f[m]
            y = s if y is None else y + s
        return y
    if up != 2 or down != 1:
        raise NotImplementedError('polyphase FIR supports up=1 (any down) or up=2 with down=1')
    # Polyphase: output j = 2t + r only sees taps m with (j + m - p0) even, i.e. input sample t + (r + m - p0)/2.
    out_len = 2 * n + p0 + p1 - k + 1
    counts = [(out_len + 1) // 2, out_len // 2]
    taps = [[(m, (r + m - p0) // 2) for m in range(k) if (r + m - p0) % 2 == 0] for r in (0, 1)]
    offs = [o for t in taps for _, o in t]
    lp = max(0, -min(offs))
    rp = max(0, counts[0] - 1 + max(offs) - (n - 1))
    xp = _pad_axis(x, axis, lp, rp)
    phases = []
    for r in (0, 1):
        y = None
        for m, o in taps[r]:
            s = jax.lax.slice_in_dim(xp, o + lp, o + lp + counts[r], 1, axis) * f[m]
            y = s if y is None else y + s
        if y is None:
            shape = list(x.shape)
            shape[axis] = counts[r]
            y = jnp.zeros(shape, x.dtype)
        if counts[r] < counts[0]:
            y = _pad_axis(y, axis, 0, counts[0] - counts[r])
        phases.append(y)
    y = jnp.stack(phases, axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * counts[0]
    y = y.reshape(shape)
    return jax.lax.slice_in_dim(y, 0, out_len, 1, axis)


def _pad_axis(x, axis, p0, p1):
    """Zero-pad (or crop, for negative amounts) one axis."""
    if p0 < 0:
        x = jax.lax.slice_in_dim(x, -p0, x.shape[axis], 1, axis)
        p0 = 0
    if p1 < 0:
        x = jax.lax.slice_in_dim(x, 0, x.shape[axis] + p1, 1, axis)
        p1 = 0
    if p0 or p1:
        pads = [(0, 0)] * x.ndim
        pads[axis] = (p0, p1)
        x = jnp.pad(x, pads)
    return x


def upfirdn2d(x, f, up: int = 1, down: int = 1, padding=(0, 0), gain: float = 1.0, impl: str = 'polyphase'):
    """NVlabs `upfirdn2d` on NHWC x with the separable filter outer(f, f) (f from `setup_filter`).

    padding = (p0, p1) applies to both spatial axes (negative crops). The 2-D filter is scaled by `gain`.
    Output size per axis: (n * up + p0 + p1 - len(f)) // down + 1.
    """
    f = np.asarray(f, np.float32)
    p0, p1 = padding
    if impl == 'depthwise':
        return _upfirdn2d_depthwise(x, f, up, down, p0, p1, gain)
    if impl != 'polyphase':
        raise ValueError(f'unknown FIR impl {impl!r}')
    f1 = (f[::-1] * math.sqrt(gain)).astype(np.float32)  # true convolution: flip; gain split over two axes
    x = _fir_axis(x, 1, f1, up, down, p0, p1)
    return _fir_axis(x, 2, f1, up, down, p0, p1)


def _upfirdn2d_depthwise(x, f, up, down, p0, p1, gain):
    """Reference: zero insertion, padding and one depthwise conv with the full 2-D filter."""
    n, h, w, c = x.shape
    if up > 1:
        x = x.reshape(n, h, 1, w, 1, c)
        x = jnp.pad(x, ((0, 0), (0, 0), (0, up - 1), (0, 0), (0, up - 1), (0, 0)))
        x = x.reshape(n, h * up, w * up, c)
    x = _pad_axis(_pad_axis(x, 1, p0, p1), 2, p0, p1)
    f2 = np.outer(f, f)[::-1, ::-1] * gain
    kernel = jnp.asarray(np.tile(f2[:, :, None, None], (1, 1, 1, c)), x.dtype)
    x = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'VALID', dimension_numbers=_DN, feature_group_count=c)
    return x[:, ::down, ::down, :]


def downsample2d(x, f, impl='polyphase'):
    """NVlabs `upfirdn2d.downsample2d`: FIR filter, then keep every 2nd sample. [N, H, W, C] -> [N, H/2, W/2, C]."""
    k = len(f)
    return upfirdn2d(x, f, down=2, padding=((k - 1) // 2, (k - 2) // 2), impl=impl)


def upsample2d(x, f, impl='polyphase'):
    """2x upsampling with the FIR filter, as NVlabs `upsample2d` (gain 4, output exactly 2H x 2W)."""
    k = len(f)
    return upfirdn2d(x, f, up=2, padding=((k + 1) // 2, (k - 2) // 2), gain=4.0, impl=impl)


# ----------------------------------------------------------------------------------------------------------
# Convolutions.


def conv2d(x, w, stride: int = 1, padding=0, groups: int = 1, wgrad: str = 'xla'):
    """Cross-correlation (torch conv2d), NHWC x, HWIO w.

    wgrad picks how the derivatives are formed ('xla': autodiff of the conv, the reference; 'gemm': see
    `conv2d_gemm`). The forward numbers are the same conv either way (a 1x1 conv is a dot under 'gemm').
    """
    pad = [(padding, padding)] * 2 if isinstance(padding, int) else padding
    pad = tuple((int(a), int(b)) for a, b in pad)
    w = w.astype(x.dtype)
    if wgrad == 'gemm' and stride == 1 and groups == 1:
        kh, kw = w.shape[0], w.shape[1]
        if kh == kw == 1 and pad == ((0, 0), (0, 0)):
            return jnp.einsum('nhwc,co->nhwo', x, w[0, 0])
        if all(0 <= p <= k - 1 for (p0, p1), k in zip(pad, (kh, kw)) for p in (p0, p1)):
            return conv2d_gemm(x, w, pad)
    elif wgrad not in ('xla', 'gemm'):
        raise ValueError(f'unknown weight-gradient impl {wgrad!r}')
    return _lax_conv(x, w, (stride, stride), pad, groups)


def _lax_conv(x, w, strides, pad, groups=1):
    return jax.lax.conv_general_dilated(x, w, strides, pad, dimension_numbers=_DN, feature_group_count=groups)


# Below this many output pixels per image XLA's own weight-gradient conv is as fast as the per-tap GEMMs.
_GEMM_MIN_PIXELS = 16 * 16


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d_gemm(x, w, pad):
    """Stride-1 correlation (pads 0..k-1) whose derivatives avoid XLA:CPU's weight-gradient conv.

    Autodiff of a conv gives a weight gradient that is a conv with a window the size of the feature map;
    with YNNPACK fusions on, XLA:CPU runs it 2-3x slower than the forward conv at 32x32 and up. (alignjax turns
    them off by default, see alignjax/_xla_flags.py; XLA's Eigen convs then beat these GEMMs, so 'xla' is the
    default `Impl.wgrad`.) Here the
    weight gradient is one GEMM per kernel tap, dW[a, b] = x_pad[:, a:a+H', b:b+W']^T dY (contracting over
    N H' W'), and the input gradient is the correlation of dY with the flipped kernel -- this same function,
    so second-order terms (R1, path length) never meet XLA's weight-gradient conv either.
    """
    return _lax_conv(x, w, (1, 1), pad)


def _conv2d_gemm_fwd(x, w, pad):
    return _lax_conv(x, w, (1, 1), pad), (x, w)


def _conv2d_gemm_bwd(pad, res, dy):
    x, w = res
    kh, kw = w.shape[0], w.shape[1]
    tpad = ((kh - 1 - pad[0][0], kh - 1 - pad[0][1]), (kw - 1 - pad[1][0], kw - 1 - pad[1][1]))
    dx = conv2d_gemm(dy, jnp.swapaxes(w[::-1, ::-1], 2, 3), tpad)
    return dx, _weight_grad(x, dy, (kh, kw), pad)


conv2d_gemm.defvjp(_conv2d_gemm_fwd, _conv2d_gemm_bwd)


def _weight_grad(x, dy, ksize, pad):
    """dW[a, b, i, o] = sum_{n, h, w} x_pad[n, h + a, w + b, i] dy[n, h, w, o]: one GEMM per tap."""
    kh, kw = ksize
    oh, ow = dy.shape[1], dy.shape[2]
    if oh * ow < _GEMM_MIN_PIXELS:
        w0 = jnp.zeros((kh, kw, x.shape[3], dy.shape[3]), x.dtype)
        return jax.vjp(lambda w: _lax_conv(x, w, (1, 1), pad), w0)[1](dy)[0]
    xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
    d2 = dy.reshape(-1, dy.shape[3])
    dn = (((0,), (0,)), ((), ()))
    taps = [
        jnp.stack(
            [jax.lax.dot_general(xp[:, a : a + oh, b : b + ow].reshape(-1, x.shape[3]), d2, dn) for b in range(kw)]
        )
        for a in range(kh)
    ]
    return jnp.stack(taps).astype(x.dtype)


def conv2d_resample(
    x,
    w,
    f,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    fir_impl='polyphase',
    up_impl='upfir',
    down_impl='split',
    wgrad='xla',
):
    """NVlabs `conv2d_resample` for the cases StyleGAN2 uses, NHWC/HWIO.

    up=2: 3x3 conv on the 2x FIR-upsampled grid (as NVlabs' transposed conv followed by the FIR; the kernel
    is applied spatially flipped, exactly as NVlabs does; 'split' / 'phase' compute it per output phase).
    down=2: FIR, then a stride-2 conv, computed as space-to-depth + stride-1 convs ('split': one conv per input
    phase; 's2d': one conv over the 4C phase channels; neither has a transposed conv in its input gradient,
    whose weight gradient -- needed by R1 -- XLA:CPU runs ~10x slower) or directly ('strided', the reference).
    Otherwise a plain conv with `padding`.
    """
    kh, kw = w.shape[0], w.shape[1]
    if up == 1 and down == 1:
        return conv2d(x, w, padding=padding, groups=groups, wgrad=wgrad)
    fk = len(f)
    if up == 2 and down == 1:
        assert kh == kw, 'square kernels only'
        if kh == 1:  # 1x1 (resnet G skip): conv, then FIR-upsample (as NVlabs' fast path)
            x = conv2d(x, w, groups=groups, wgrad=wgrad)
            return upfirdn2d(
                x, f, up=2, padding=(padding + (fk + 1) // 2, padding + (fk - 2) // 2), gain=4.0, impl=fir_impl
            )
        if up_impl == 'transpose':
            p0 = padding + (fk + 1) // 2 - (kw - 1)
            p1 = padding + (fk - 2) // 2 - (kw - 2)
            pt = max(min(-p0, -p1), 0)
            wf = w[::-1, ::-1]
            x = jax.lax.conv_general_dilated(
                x,
                wf.astype(x.dtype),
                (1, 1),
                [(kw - 1 - pt, kw - 1 - pt)] * 2,
                lhs_dilation=(2, 2),
                dimension_numbers=_DN,
                feature_group_count=groups,
            )
            return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt), gain=4.0, impl=fir_impl)
        if up_impl in ('split', 'phase') and kw == 3 and groups == 1:
            p0 = padding + (fk + 1) // 2 - (kw - 1)
            p1 = padding + (fk - 2) // 2 - (kw - 2)
            up3 = _conv_transpose3_stride2_split if up_impl == 'split' else _conv_transpose3_stride2_phase_conv
            return upfirdn2d(up3(x, w, wgrad), f, padding=(p0, p1), gain=4.0, impl=fir_impl)
        if up_impl not in ('upfir', 'phase', 'split'):
            raise ValueError(f'unknown up-conv impl {up_impl!r}')
        # Transposed conv (pad 0) then FIR (pad p) equals FIR-upsampling with padding (p0, p1), then a valid
        # correlation with the flipped kernel: both are linear shift-invariant and nothing is cropped between.
        # The pads work out to upsample2d's own plus the conv padding.
        x = upfirdn2d(x, f, up=2, padding=(padding + (fk + 1) // 2, padding + (fk - 2) // 2), gain=4.0, impl=fir_impl)
        return _conv2d_valid_as_same(x, w[::-1, ::-1], groups, wgrad)
    if down == 2 and up == 1:
        p0 = padding + (fk - 2 + 1) // 2
        p1 = padding + (fk - 2) // 2
        if kh == 1 and kw == 1:
            x = upfirdn2d(x, f, down=2, padding=(p0, p1), impl=fir_impl)
            return conv2d(x, w, groups=groups, wgrad=wgrad)
        x = upfirdn2d(x, f, padding=(p0, p1), impl=fir_impl)
        if down_impl == 'split':
            return _conv2d_stride2_split(x, w, groups, wgrad)
        if down_impl == 's2d':
            return _conv2d_stride2_s2d_conv(x, w, groups, wgrad)
        if down_impl != 'strided':
            raise ValueError(f'unknown down-conv impl {down_impl!r}')
        return conv2d(x, w, stride=2, groups=groups, wgrad=wgrad)
    if up != 1 or down != 1:
        raise NotImplementedError(f'conv2d_resample: up={up}, down={down}')
    return conv2d(x, w, padding=padding, groups=groups, wgrad=wgrad)


def _conv2d_valid_as_same(x, w, groups=1, wgrad='xla'):
    """A valid correlation computed as a SAME-padded one with the border cropped.

    Same numbers, a few % more work, but autodiff then never builds a conv with full (k-1) padding, whose
    weight gradient -- reached by second-order terms (path length, R1) -- XLA:CPU runs 10-30x slower.
    """
    p = w.shape[0] // 2
    y = conv2d(x, w, padding=p, groups=groups, wgrad=wgrad)
    return y[:, p : y.shape[1] - p, p : y.shape[2] - p] if p else y


def _phase_conv(x, w, out_hw, wgrad='xla'):
    """Correlation of x with w, padded at the far side only and cropped to out_hw: the valid output, or more
    rows/columns where out_hw asks for them (zero input beyond the edge). Never a valid conv (see
    `_conv2d_valid_as_same`)."""
    kh, kw = w.shape[0], w.shape[1]
    y = conv2d(x, w, padding=[(0, kh - 1), (0, kw - 1)], wgrad=wgrad)
    return y[:, : out_hw[0], : out_hw[1]]


def _conv_transpose3_stride2_split(x, w, wgrad='xla'):
    """torch conv_transpose2d(x, w, stride=2, padding=0) for a 3x3 kernel, as four stride-1 convs + pixel shuffle.

    Output pixel (2t + r, 2u + s) only meets the kernel taps of its phase (r, s): per axis, with w' = w
    flipped, phase 0 sums x[t-1] w'[0] + x[t] w'[2] and phase 1 is x[t] w'[1]. So phase (0, 0) is a 2x2 conv,
    (0, 1) and (1, 0) are 2x1 / 1x2 convs and (1, 1) a 1x1 conv: 9 taps per pixel, as the transposed conv, no
    zero taps multiplied, and no transposed conv in the derivatives. x: [N, H, W, C] -> [N, 2H+1, 2W+1, O].
    """
    n, h, wd, _ = x.shape
    wf = w[::-1, ::-1]
    xp = _pad_axis(_pad_axis(x, 1, 1, 0), 2, 1, 0)  # phase 0 reads x[t-1]: one zero row/column in front
    rows = []
    for r in range(2):
        cols = []
        for s_ in range(2):
            src = xp[:, r:, s_:]  # phase 1 reads x[t]: drop the padding
            y = _phase_conv(src, wf[r::2, s_::2], src.shape[1:3], wgrad)
            cols.append(_pad_axis(_pad_axis(y, 1, 0, h + 1 - y.shape[1]), 2, 0, wd + 1 - y.shape[2]))
        rows.append(jnp.stack(cols, axis=3))  # [N, H+1, W+1, 2 (s), O]
    y = jnp.stack(rows, axis=2)  # [N, H+1, 2 (r), W+1, 2 (s), O]
    y = y.reshape(n, 2 * h + 2, 2 * wd + 2, y.shape[-1])
    return y[:, : 2 * h + 1, : 2 * wd + 1]


def _conv2d_stride2_split(x, w, groups=1, wgrad='xla'):
    """Valid stride-2 correlation as space-to-depth + one stride-1 conv per input phase.

    y[i] = sum_a x[2i + a] w[a] = sum_{phase r} sum_b x[2(i + b) + r] w[2b + r]: the input splits into its four
    2x2 phases, and phase (r, s) meets only the kernel taps w[r::2, s::2] (for 3x3: a 2x2, a 2x1, a 1x2 and a
    1x1 kernel). The four convs sum to the strided conv with exactly its k*k taps per output pixel, and their
    derivatives are stride-1 convs (the strided conv's input gradient is a transposed conv, whose weight
    gradient -- needed by R1 -- XLA:CPU runs ~10x slower).
    """
    if groups != 1:
        return conv2d(x, w, stride=2, groups=groups)
    n, h, wd, c = x.shape
    k = w.shape[0]
    oh, ow = (h - k) // 2 + 1, (wd - k) // 2 + 1
    hh, ww = oh + (k + 1) // 2 - 1, ow + (k + 1) // 2 - 1  # phase-grid size phase 0 needs
    x = _pad_axis(_pad_axis(x, 1, 0, 2 * hh - h), 2, 0, 2 * ww - wd).reshape(n, hh, 2, ww, 2, c)
    y = 0
    for r in range(2):
        for s_ in range(2):
            if r < k and s_ < k:
                y = y + _phase_conv(x[:, :, r, :, s_], w[r::2, s_::2], (oh, ow), wgrad)
    return y


def _conv_transpose3_stride2_phase_conv(x, w, wgrad='xla'):
    """Up-conv 'phase': as `_conv_transpose3_stride2_split`, but all four phases in one 2x2 conv with 4 O outputs.

    Output pixel (2t + r, 2u + s) only meets kernel taps of its phase (r, s): per axis, with w' = w flipped,
    phase 0 sums x[t-1] w'[0] + x[t] w'[2] and phase 1 is x[t] w'[1]. One 2x2 conv over x (padded by 1 in
    front) with 4 O output channels computes all four phases: 16 taps per pixel, 7 of them zero (the split
    form has 9), but one larger conv; no transposed conv appears in the derivatives.
    x: [N, H, W, C] -> [N, 2H+1, 2W+1, O].
    """
    n, h, wd, c = x.shape
    o = w.shape[3]
    wf = w[::-1, ::-1]
    tap = ((0, 2), (None, 1))  # tap[phase][kernel offset a]: index into wf (None: no tap)
    zero = jnp.zeros((c, o), w.dtype)
    kernel = jnp.stack(
        [
            jnp.stack(
                [
                    jnp.stack(
                        [
                            zero if tap[r][a] is None or tap[s_][b] is None else wf[tap[r][a], tap[s_][b]]
                            for r in range(2)
                            for s_ in range(2)
                        ],
                        axis=1,
                    ).reshape(c, 4 * o)
                    for b in range(2)
                ]
            )
            for a in range(2)
        ]
    )  # [2, 2, C, 4 O], output channels (r, s, O)
    x = _pad_axis(_pad_axis(x, 1, 1, 0), 2, 1, 0)
    y = _phase_conv(x, kernel, (h + 1, wd + 1), wgrad)
    y = y.reshape(n, h + 1, wd + 1, 2, 2, o).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h + 2, 2 * wd + 2, o)
    return y[:, : 2 * h + 1, : 2 * wd + 1]


def _conv2d_stride2_s2d_conv(x, w, groups=1, wgrad='xla'):
    """Down-conv 's2d': as `_conv2d_stride2_split`, but one stride-1 conv with a ceil(k/2) kernel over 4C channels.

    y[i] = sum_a x[2i + a] w[a] = sum_{b, phase} x_phase[i + b] w[2b + phase]: each 2x2 pixel block becomes
    4C channels, the kernel is zero-padded to even size and regrouped to [k', k', 4C, O] (for 3x3: 16 taps
    per pixel, 7 of them zero), then `_phase_conv`.
    """
    if groups != 1:
        return conv2d(x, w, stride=2, groups=groups)
    n, h, wd, c = x.shape
    k = w.shape[0]
    ke = k + (k % 2)
    kk = ke // 2
    oh, ow = (h - k) // 2 + 1, (wd - k) // 2 + 1
    hh, ww = oh + kk - 1, ow + kk - 1  # phase-grid size the conv needs
    x = _pad_axis(_pad_axis(x, 1, 0, 2 * hh - h), 2, 0, 2 * ww - wd)
    x = x.reshape(n, hh, 2, ww, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, hh, ww, 4 * c)
    w = jnp.pad(w, ((0, ke - k), (0, ke - k), (0, 0), (0, 0)))
    o = w.shape[3]
    w = w.reshape(kk, 2, kk, 2, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(kk, kk, 4 * c, o)
    return _phase_conv(x, w, (oh, ow), wgrad)


def modulated_conv2d(
    x,
    weight,
    styles,
    *,
    demodulate=True,
    up=1,
    padding=0,
    f=None,
    noise=None,
    impl='shared',
    fir_impl='polyphase',
    up_impl='upfir',
    wgrad='xla',
):
    """StyleGAN2 modulated convolution.

    x: [N, H, W, I]; weight: [k, k, I, O] (float32 params); styles: [N, I] (float32).
    noise: None or broadcastable to [N, H', W', 1] (already scaled by the noise strength).
    Returns [N, H', W', O] in x's dtype. Demodulation coefficients are computed in float32.
    """
    n = x.shape[0]
    kh, kw, ci, co = weight.shape
    styles = styles.astype(jnp.float32)
    weight = weight.astype(jnp.float32)
    dcoefs = None
    if demodulate:  # sum_{i,k} (w_oik s_i)^2 = s^2 @ sum_k w^2
        dcoefs = jax.lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)  # [N, O]
    if impl == 'shared':
        x = x * styles.astype(x.dtype)[:, None, None, :]
        x = conv2d_resample(x, weight, f, up=up, padding=padding, fir_impl=fir_impl, up_impl=up_impl, wgrad=wgrad)
        if dcoefs is not None:
            x = x * dcoefs.astype(x.dtype)[:, None, None, :]
    elif impl == 'grouped':
        w = weight[None] * styles[:, None, None, :, None]  # [N, k, k, I, O]
        if dcoefs is not None:
            w = w * dcoefs[:, None, None, None, :]
        w = jnp.transpose(w, (1, 2, 3, 0, 4)).reshape(kh, kw, ci, n * co)
        _, h, wd, _ = x.shape
        x = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, h, wd, n * ci)
        x = conv2d_resample(x, w, f, up=up, padding=padding, groups=n, fir_impl=fir_impl, up_impl=up_impl, wgrad=wgrad)
        _, h, wd, _ = x.shape
        x = jnp.transpose(x.reshape(h, wd, n, co), (2, 0, 1, 3))
    else:
        raise ValueError(f'unknown modulated-conv impl {impl!r}')
    if noise is not None:
        x = x + noise.astype(x.dtype)
    return x


# ----------------------------------------------------------------------------------------------------------
# Discriminator helpers.


def minibatch_std(x, group_size: int | None = 4, num_channels: int = 1):
    """Append per-group feature stddev channels (NVlabs MinibatchStdLayer). x: [N, H, W, C] -> [N, H, W, C+F].

    Sample i belongs to group i mod (N / G), as in NVlabs.
    """
    n, h, w, c = x.shape
    g = n if group_size is None else min(group_size, n)
    if n % g:
        raise ValueError(f'minibatch-stddev: batch size {n} is not divisible by the group size {g}')
    f = num_channels
    if c % f:
        raise ValueError(f'minibatch-stddev: {c} channels are not divisible by num_channels={f}')
    y = x.astype(jnp.float32).reshape(g, n // g, h, w, f, c // f)
    y = y - jnp.mean(y, axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
    y = jnp.mean(y, axis=(1, 2, 4))  # [n, F]
    y = jnp.tile(y[:, None, None, :], (g, h, w, 1)).astype(x.dtype)
    return jnp.concatenate([x, y], axis=-1)


def blended_modulated_conv2d(
    x,
    weight_a,
    weight_b,
    t,
    styles,
    *,
    demodulate=True,
    up=1,
    padding=0,
    f=None,
    noise=None,
    fir_impl='polyphase',
    up_impl='upfir',
    wgrad='xla',
):
    """`modulated_conv2d` with per-sample blended kernels (1 - t[n]) Wa + t[n] Wb, none of them built.

    Convolution is linear in the kernel: one conv with [Wa | Wb] stacked on the output axis, outputs lerped per
    sample. Demodulation is exact: sum_{i,k} (((1 - t) Wa + t Wb)_oik s_i)^2 = (1 - t)^2 Saa + 2 t (1 - t) Sab
    + t^2 Sb, with Sxy = s^2 @ sum_k Wx Wy. x: [N, H, W, I]; weights [k, k, I, O]; t [N]; styles [N, I].
    Returns [N, H', W', O] in x's dtype (the lerp and the coefficients computed in float32).
    """
    o = weight_a.shape[-1]
    styles = styles.astype(jnp.float32)
    weight_a, weight_b = weight_a.astype(jnp.float32), weight_b.astype(jnp.float32)
    t = t.astype(jnp.float32)
    y = conv2d_resample(
        x * styles.astype(x.dtype)[:, None, None, :],
        jnp.concatenate([weight_a, weight_b], -1),
        f,
        up=up,
        padding=padding,
        fir_impl=fir_impl,
        up_impl=up_impl,
        wgrad=wgrad,
    )
    tt = t[:, None, None, None]
    y = ((1 - tt) * y[..., :o].astype(jnp.float32) + tt * y[..., o:].astype(jnp.float32)).astype(x.dtype)
    if demodulate:
        s2 = jnp.square(styles)
        hi = jax.lax.Precision.HIGHEST
        saa = jnp.dot(s2, jnp.sum(weight_a * weight_a, axis=(0, 1)), precision=hi)
        sab = jnp.dot(s2, jnp.sum(weight_a * weight_b, axis=(0, 1)), precision=hi)
        sbb = jnp.dot(s2, jnp.sum(weight_b * weight_b, axis=(0, 1)), precision=hi)
        tc = t[:, None]
        d = jax.lax.rsqrt(jnp.square(1 - tc) * saa + 2 * tc * (1 - tc) * sab + jnp.square(tc) * sbb + 1e-8)
        y = y * d.astype(y.dtype)[:, None, None, :]
    if noise is not None:
        y = y + noise.astype(y.dtype)
    return y
