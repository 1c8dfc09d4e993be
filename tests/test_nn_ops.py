"""Fast op implementations against their reference paths and against a direct numpy definition."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alignjax.nn import ops

F = ops.setup_filter([1, 3, 3, 1])


def upfirdn_numpy(x, f, up, down, p0, p1, gain):
    """Definition of NVlabs upfirdn2d, written independently: loops over output pixels."""
    n, h, w, c = x.shape
    z = np.zeros((n, h * up, w * up, c), x.dtype)
    z[:, ::up, ::up] = x
    zp = np.zeros((n, h * up + p0 + p1, w * up + p0 + p1, c), x.dtype) if min(p0, p1) >= 0 else None
    zp[:, p0 : p0 + h * up, p0 : p0 + w * up] = z
    f2 = np.outer(f, f)[::-1, ::-1] * gain  # true convolution
    k = len(f)
    oh = (zp.shape[1] - k) // down + 1
    out = np.zeros((n, oh, oh, c), np.float64)
    for i in range(oh):
        for j in range(oh):
            patch = zp[:, i * down : i * down + k, j * down : j * down + k]
            out[:, i, j] = np.einsum('nabc,ab->nc', patch, f2)
    return out


@pytest.mark.parametrize(
    'up,down,pads',
    [(2, 1, (2, 1)), (2, 1, (3, 2)), (2, 1, (1, 0)), (1, 1, (2, 2)), (1, 2, (1, 1)), (1, 1, (0, 0)), (2, 1, (4, 4))],
)
@pytest.mark.parametrize('impl', ['polyphase', 'depthwise'])
def test_upfirdn2d_matches_definition(up, down, pads, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    gain = up * up
    ref = upfirdn_numpy(x, F, up, down, *pads, gain)
    got = np.asarray(ops.upfirdn2d(jnp.asarray(x), F, up=up, down=down, padding=pads, gain=gain, impl=impl))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_upsample2d_shape_and_constant():
    x = jnp.ones((1, 8, 8, 2))
    y = ops.upsample2d(x, F)
    assert y.shape == (1, 16, 16, 2)
    np.testing.assert_allclose(np.asarray(y)[:, 2:-2, 2:-2], 1.0, atol=1e-6)  # interior keeps DC level


@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2)])
def test_conv2d_resample_impls_agree(up, down):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 8, 8, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 4, 5)), jnp.float32)
    outs = [
        ops.conv2d_resample(x, w, F, up=up, down=down, padding=1, fir_impl=fi, up_impl=ui, down_impl=di)
        for fi, ui, di in itertools.product(
            ['polyphase', 'depthwise'], ['upfir', 'transpose', 'phase', 'split'], ['split', 's2d', 'strided']
        )
    ]
    for o in outs[1:]:
        assert o.shape == outs[0].shape
        np.testing.assert_allclose(np.asarray(o), np.asarray(outs[0]), atol=1e-4)


@pytest.mark.parametrize('k,h', [(3, 9), (3, 10), (1, 8), (4, 11)])
def test_stride2_space_to_depth_matches_strided(k, h):
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((2, h, h, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, 3, 4)), jnp.float32)
    b = ops.conv2d(x, w, stride=2)
    for impl in (ops._conv2d_stride2_split, ops._conv2d_stride2_s2d_conv):
        a = impl(x, w)
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, err_msg=impl.__name__)


def test_upconv_matches_torch_semantics():
    """NVlabs' up-conv = conv_transpose2d(stride 2) then FIR; check 'upfir' against that written in numpy."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    # conv_transpose2d (scatter form): y[2i + a, 2j + b, o] += x[i, j, c] * w[a, b, c, o]
    t = np.zeros((1, 9, 9, 3))
    for i, j, a, b in itertools.product(range(4), range(4), range(3), range(3)):
        t[0, 2 * i + a, 2 * j + b] += x[0, i, j] @ w[a, b]
    ref = upfirdn_numpy(t, F, 1, 1, 1, 1, 4.0)
    for impl in ('upfir', 'phase', 'split', 'transpose'):
        got = np.asarray(ops.conv2d_resample(jnp.asarray(x), jnp.asarray(w), F, up=2, padding=1, up_impl=impl))
        np.testing.assert_allclose(got, ref, atol=1e-4, err_msg=impl)


@pytest.mark.parametrize('up,demod', [(1, True), (2, True), (1, False)])
def test_modulated_conv_shared_equals_grouped(up, demod):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((3, 8, 8, 4)), jnp.float32)
    k = 3 if demod else 1
    w = jnp.asarray(rng.standard_normal((k, k, 4, 6)), jnp.float32)
    s = jnp.asarray(rng.standard_normal((3, 4)) + 1, jnp.float32)
    noise = jnp.asarray(rng.standard_normal((3, 8 * up, 8 * up, 1)), jnp.float32)
    a = ops.modulated_conv2d(x, w, s, demodulate=demod, up=up, padding=k // 2, f=F, noise=noise, impl='shared')
    b = ops.modulated_conv2d(x, w, s, demodulate=demod, up=up, padding=k // 2, f=F, noise=noise, impl='grouped')
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    if demod and up == 1:  # demodulation: each output channel of the per-sample kernel has unit norm
        ww = np.asarray(w)[None] * np.asarray(s)[:, None, None, :, None]
        d = 1 / np.sqrt((ww**2).sum(axis=(1, 2, 3)) + 1e-8)
        assert np.all(np.isfinite(d))


def modconv_numpy(x, w, s, demodulate, up, padding, noise):
    """The StyleGAN2 paper's modulated conv (Karras et al. 2020, eqs. 1-3), per sample, written independently of
    alignjax.nn.ops: w'_oik = s_i w_oik; w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + 1e-8); y = conv(x, w'')
    (+ noise).
    up=2 is NVlabs' order: stride-2 transposed conv, then the [1,3,3,1] FIR with gain 4."""
    n, h, _, ci = x.shape
    k, co = w.shape[0], w.shape[3]
    outs = []
    for b in range(n):
        wb = w.astype(np.float64) * s[b].astype(np.float64)[None, None, :, None]  # modulate
        if demodulate:
            wb = wb / np.sqrt((wb**2).sum(axis=(0, 1, 2)) + 1e-8)  # demodulate
        xb = x[b].astype(np.float64)
        if up == 1:  # 'same' correlation
            xp = np.pad(xb, ((padding, padding), (padding, padding), (0, 0)))
            oh = xp.shape[0] - k + 1
            y = np.zeros((oh, oh, co))
            for i, j in itertools.product(range(oh), range(oh)):
                y[i, j] = np.einsum('abc,abco->o', xp[i : i + k, j : j + k], wb)
        else:  # transposed conv (scatter), then FIR
            t = np.zeros((2 * h + k - 2, 2 * h + k - 2, co))
            for i, j, a, c in itertools.product(range(h), range(h), range(k), range(k)):
                t[2 * i + a, 2 * j + c] += xb[i, j] @ wb[a, c]
            y = upfirdn_numpy(t[None], F, 1, 1, 1, 1, 4.0)[0]
        outs.append(y)
    y = np.stack(outs)
    return y if noise is None else y + noise


@pytest.mark.parametrize('up,demod', [(1, True), (2, True), (1, False)])
@pytest.mark.parametrize('variant', ['shared', 'grouped', 'blended'])
def test_modulated_conv_matches_paper_definition(up, demod, variant):
    """Every modulated-conv variant against the independent numpy definition (the shared and grouped variants
    share their demodulation line, so comparing them with each other alone would prove nothing)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 6, 4)).astype(np.float32)
    k = 3 if demod else 1
    w = rng.standard_normal((k, k, 4, 5)).astype(np.float32)
    s = (rng.standard_normal((3, 4)) + 1).astype(np.float32)
    noise = rng.standard_normal((3, 6 * up, 6 * up, 1)).astype(np.float32)
    kw = dict(demodulate=demod, up=up, padding=k // 2, f=F, noise=jnp.asarray(noise))
    if variant == 'blended':  # per-sample kernels (1 - t) wa + t wb, without building them
        w2 = rng.standard_normal(w.shape).astype(np.float32)
        t = np.array([0.0, 0.3, 1.0], np.float32)
        got = ops.blended_modulated_conv2d(
            jnp.asarray(x), jnp.asarray(w), jnp.asarray(w2), jnp.asarray(t), jnp.asarray(s), **kw
        )
        ref = np.concatenate(
            [
                modconv_numpy(
                    x[i : i + 1], (1 - t[i]) * w + t[i] * w2, s[i : i + 1], demod, up, k // 2, noise[i : i + 1]
                )
                for i in range(3)
            ]
        )
    else:
        got = ops.modulated_conv2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(s), impl=variant, **kw)
        ref = modconv_numpy(x, w, s, demod, up, k // 2, noise)
    assert got.shape == ref.shape
    np.testing.assert_allclose(np.asarray(got), ref, atol=1e-4, rtol=1e-4)


def test_minibatch_std_groups_like_nvlabs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 4, 4, 6)).astype(np.float32)
    y = np.asarray(ops.minibatch_std(jnp.asarray(x), group_size=4, num_channels=2))
    assert y.shape == (8, 4, 4, 8)
    # sample i is in group i % 2; channels split in 2 groups of 3
    for j in range(2):
        members = x[j::2]  # [4, H, W, C]
        sd = np.sqrt(members.var(axis=0) + 1e-8)  # [H, W, C]
        for fch in range(2):
            val = sd[..., fch * 3 : (fch + 1) * 3].mean()
            np.testing.assert_allclose(y[j::2, :, :, 6 + fch], val, rtol=1e-5)
    with pytest.raises(ValueError, match='divisible'):
        ops.minibatch_std(jnp.zeros((6, 4, 4, 2)), group_size=4)


def test_bias_act_clamp_and_gain():
    x = jnp.array([[-2.0, 0.5, 300.0]])
    y = np.asarray(ops.bias_act(x, jnp.array([1.0, 0.0, 0.0]), 'lrelu', clamp=256.0))
    np.testing.assert_allclose(y, [[-0.2 * np.sqrt(2), 0.5 * np.sqrt(2), 256.0]], rtol=1e-6)


@pytest.mark.parametrize(
    'k,pad', [(3, ((1, 1), (1, 1))), (2, ((0, 1), (0, 1))), (2, ((1, 0), (1, 0))), (3, ((0, 2), (2, 0)))]
)
def test_conv2d_gemm_forward_and_all_gradients_equal_reference(k, pad, monkeypatch):
    """The 'gemm' weight-gradient conv: forward, both first derivatives and the second-order (R1-like) ones
    equal autodiff of the reference conv; the GEMM path is forced on small maps."""
    monkeypatch.setattr(ops, '_GEMM_MIN_PIXELS', 1)
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((2, 7, 6, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, 4, 5)), jnp.float32)

    def run(wgrad):
        def f(x, w):
            return ops.conv2d(x, w, padding=pad, wgrad=wgrad)

        def loss(x, w):
            return jnp.sum(jnp.sin(f(x, w)))

        def r1(x, w):
            return jnp.sum(jnp.square(jax.grad(loss)(x, w)))

        return [f(x, w), *jax.grad(loss, (0, 1))(x, w), *jax.grad(r1, (0, 1))(x, w)]

    for got, ref in zip(run('gemm'), run('xla')):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(ref)))
        )


def _first_and_second_order(loss, x, w):
    """d loss / d(x, w), then d |d loss / dx|^2 / d(x, w) (as R1 and path length differentiate)."""
    return [*jax.grad(loss, (0, 1))(x, w), *jax.grad(lambda x, w: jnp.sum(jax.grad(loss)(x, w) ** 2), (0, 1))(x, w)]


@pytest.mark.parametrize('resample', ['split', 'phase'])
@pytest.mark.parametrize('up,down,k', [(1, 1, 3), (1, 1, 1), (2, 1, 3), (2, 1, 1), (1, 2, 3), (1, 2, 1)])
def test_conv2d_resample_wgrad_impls_agree(up, down, k, resample, monkeypatch):
    monkeypatch.setattr(ops, '_GEMM_MIN_PIXELS', 1)
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, 8, 8, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, 4, 5)), jnp.float32)

    down_impl = 'split' if resample == 'split' else 's2d'

    def grads(wgrad):
        def loss(x, w):
            y = ops.conv2d_resample(
                x, w, F, up=up, down=down, padding=k // 2, up_impl=resample, down_impl=down_impl, wgrad=wgrad
            )
            return jnp.sum(jnp.sin(y))

        return _first_and_second_order(loss, x, w)

    for got, ref in zip(grads('gemm'), grads('xla')):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(ref)))
        )


@pytest.mark.parametrize('up,down', [(2, 1), (1, 2)])
def test_split_resample_derivatives_match_reference(up, down):
    """First and second-order derivatives of the 'split' up/down-convs equal the reference formulations'
    (transposed conv / strided conv): R1 and path length differentiate through them twice."""
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.standard_normal((2, 9, 9, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)

    def grads(up_impl, down_impl):
        def loss(x, w):
            y = ops.conv2d_resample(x, w, F, up=up, down=down, padding=1, up_impl=up_impl, down_impl=down_impl)
            return jnp.sum(jnp.sin(y))

        return _first_and_second_order(loss, x, w)

    for got, ref in zip(grads('split', 'split'), grads('transpose', 'strided')):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(ref)))
        )
