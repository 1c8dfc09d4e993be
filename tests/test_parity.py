"""Numerical parity with the reference implementations on the shared fixtures, for every checkpoint format.

Tolerances (issue 2): max-abs <= 1e-4 on ws, images, styles and logits; gradients <= 1e-4 relative to their max.
References are NCHW; our images are NHWC.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alignjax as aj

FORMATS = ['nvlabs.pkl', 'rosinality.pt', 'tf.pkl']
TOL = 1e-4


def nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def assert_close(got, ref, tol=TOL, what=''):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f'{what}: shape {got.shape} vs {ref.shape}'
    err = np.abs(got - ref).max()
    assert err <= tol, f'{what}: max-abs error {err:.3g} > {tol}'


def assert_close_rel(got, ref, tol=TOL, what=''):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= tol, f'{what}: error relative to max {err:.3g} > {tol}'


@pytest.fixture(scope='module', params=FORMATS)
def ck(request, fixtures_dir):
    return aj.load_checkpoint(fixtures_dir / request.param)


def test_config_inferred(ck, reference):
    g = ck.g_config
    assert (g.resolution, g.z_dim, g.w_dim, g.mapping_layers, g.num_ws) == (32, 64, 64, 8, 8)
    assert g.channels == {4: 64, 8: 64, 16: 64, 32: 64}
    assert ck.d_config.mbstd_group_size == 4 and ck.d_config.mbstd_num_channels == 1
    assert set(ck.nets) >= {'G_ema', 'G', 'D'}


@pytest.mark.parametrize('net', ['G_ema', 'G'])
def test_mapping_and_images(ck, reference, net):
    gen = ck.generator(net)
    ws = gen.mapping(reference['z'])
    assert_close(ws, reference[f'{net}.ws'], what=f'{net} ws')
    assert_close(nchw(gen.synthesis(ws, noise_mode='const')), reference[f'{net}.img_const'], what='img const')
    assert_close(nchw(gen.synthesis(ws, noise_mode='none')), reference[f'{net}.img_none'], what='img none')


def test_truncation_and_mixing(ck, reference):
    gen = ck.generator()
    z = reference['z']
    ws5 = gen.mapping(z, truncation_psi=0.5)
    assert_close(ws5, reference['G_ema.ws_psi0.5'], what='psi 0.5')
    assert_close(nchw(gen.synthesis(ws5)), reference['G_ema.img_psi0.5_const'], what='img psi 0.5')
    assert_close(
        gen.mapping(z, truncation_psi=0.7, truncation_cutoff=4),
        reference['G_ema.ws_psi0.7_cut4'],
        what='psi 0.7 cutoff 4',
    )
    mixed = aj.mix_styles(gen.mapping(z), gen.mapping(reference['z2']), 3)
    assert_close(mixed, reference['G_ema.ws_mix3'], what='mix ws')
    assert_close(nchw(gen.synthesis(mixed)), reference['G_ema.img_mix3_const'], what='mix img')


def test_stylespace(ck, reference):
    gen = ck.generator()
    names = [str(n) for n in reference['G_ema.style_names']]
    assert ['synthesis.' + n + '.affine' for n in gen.style_names] == names  # same layers, same order
    styles = gen.styles(reference['G_ema.ws'])
    for n in gen.style_names:
        assert_close(styles[n], reference[f'G_ema.style.synthesis.{n}.affine'], what=f'style {n}')
    img = gen.synthesis_from_styles(styles)
    assert_close(nchw(img), reference['G_ema.img_const'], what='from styles')
    # an edit of one S channel changes the image, and only through that layer
    edited = dict(styles)
    edited['b16.conv1'] = styles['b16.conv1'].at[:, 5].add(10.0)
    img_e = gen.synthesis_from_styles(edited)
    assert float(jnp.abs(img_e - img).max()) > 1e-2


def test_discriminator(ck, reference):
    d = ck.discriminator()
    img = jnp.transpose(jnp.asarray(reference['d_input']), (0, 2, 3, 1))
    assert_close(d(img), reference['D.logits'], what='D logits')
    gen_img = jnp.transpose(jnp.asarray(reference['G_ema.img_const']), (0, 2, 3, 1))
    assert_close(d(gen_img), reference['D.logits_gen'], what='D logits gen')


def test_r1_gradient(ck, reference):
    d = ck.discriminator()
    img = jnp.transpose(jnp.asarray(reference['d_input']), (0, 2, 3, 1))
    g = jax.grad(lambda x: d(x).sum())(img)
    assert_close_rel(nchw(g), reference['D.grad_input'], what='R1 grad')


def test_path_length_gradient(ck, reference):
    gen = ck.generator()
    pl_noise = jnp.transpose(jnp.asarray(reference['pl_noise']), (0, 2, 3, 1))
    g = jax.grad(lambda ws: (gen.synthesis(ws) * pl_noise).sum())(jnp.asarray(reference['G_ema.ws']))
    assert_close_rel(g, reference['G_ema.grad_ws'], what='PL grad')


def test_rosinality_outputs_agree(fixtures_dir, reference):
    ck = aj.load_checkpoint(fixtures_dir / 'rosinality.pt')
    ws = ck.generator().mapping(reference['z'])
    assert_close(nchw(ck.generator().synthesis(ws)), reference['rosinality.g_ema.img_const'], what='ros g_ema')
    ws_g = ck.generator('G').mapping(reference['z'])
    assert_close(nchw(ck.generator('G').synthesis(ws_g)), reference['rosinality.g.img_const'], what='ros g')
    ws5 = ck.generator().mapping(reference['z'], truncation_psi=0.5)
    assert_close(nchw(ck.generator().synthesis(ws5)), reference['rosinality.g_ema.img_psi0.5_const'], what='ros psi')


@pytest.mark.parametrize(
    'impl',
    [
        dict(modconv='grouped'),
        dict(upconv='transpose'),
        dict(upconv='upfir'),
        dict(fir='depthwise'),
        dict(downconv='strided'),
        dict(modconv='grouped', upconv='transpose', fir='depthwise', downconv='strided'),
    ],
)
def test_every_impl_matches(fixtures_dir, reference, impl):
    ck = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl')
    gen = ck.generator().with_impl(**impl)
    assert_close(nchw(gen.synthesis(jnp.asarray(reference['G_ema.ws']))), reference['G_ema.img_const'], what=str(impl))
    d = ck.discriminator().with_impl(**{k: v for k, v in impl.items() if k in ('fir', 'downconv')})
    img = jnp.transpose(jnp.asarray(reference['d_input']), (0, 2, 3, 1))
    assert_close(d(img), reference['D.logits'], what=f'D {impl}')


def test_bfloat16_runs_close(fixtures_dir, reference):
    """bf16 compute is for accelerators; here only check it runs and stays near the fp32 result."""
    gen = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl').generator().with_impl(dtype='bfloat16')
    img = gen.synthesis(jnp.asarray(reference['G_ema.ws']))
    assert img.dtype == jnp.float32
    err = np.abs(nchw(img) - reference['G_ema.img_const']).max() / np.abs(reference['G_ema.img_const']).max()
    assert err < 0.1, err
