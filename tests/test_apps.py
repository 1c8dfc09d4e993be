"""Aligned-model applications: translation, layer swapping, cross-domain morphing, video writers, CLIs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import child_of, save_child_checkpoint
from test_invert import tiny_generator  # same cached test generator (shares compiled functions)

import alignjax as aj
from alignjax.apps import (
    blend_variables,
    layer_swap,
    lerp_variables,
    morph,
    save_animation,
    save_translation,
    swap_alphas,
    translate,
    video,
)
from alignjax.apps.morphing import CHUNK_BUDGET, frames_per_call
from alignjax.invert import InvertConfig, Latents, decode
from alignjax.nn.networks import synthesis_layers


@pytest.fixture(scope='module')
def models():
    parent = tiny_generator()
    return parent, child_of(parent, seed=1), child_of(parent, seed=2, mapping=True)


@pytest.fixture(scope='module')
def latents(models):
    parent = models[0]
    z = np.random.RandomState(3).randn(3, parent.z_dim).astype(np.float32)
    rng = np.random.RandomState(4)
    noise = {k: rng.randn(3, *s).astype(np.float32) for k, s in parent.noise_shapes.items()}
    return Latents(code=parent.mapping(z), noise=noise, space='w+')


# ----------------------------------------------------------------------------------------------------------
# Translation.


def test_translation_equals_child_decoding_of_latents(models, latents):
    parent, child, child2 = models
    tr = translate(parent, child, latents)
    np.testing.assert_array_equal(tr.images, np.asarray(child.synthesis(latents.code, noise=latents.noise)))
    np.testing.assert_array_equal(tr.recon, np.asarray(parent.synthesis(latents.code, noise=latents.noise)))
    assert not np.allclose(tr.images, tr.recon, atol=1e-2)
    # the children's own const noise instead of the inverted maps
    tr2 = translate(parent, {'a': child, 'b': child2}, latents, noise='const')
    np.testing.assert_array_equal(tr2.outputs['b'], np.asarray(child2.synthesis(latents.code, noise_mode='const')))
    with pytest.raises(ValueError, match='2 children'):
        _ = tr2.images


def test_translate_images_and_report(models, tmp_path):
    parent, child, child2 = models
    z = np.random.RandomState(7).randn(8, parent.z_dim).astype(np.float32)
    imgs = np.asarray(parent.synthesis(parent.mapping(z)))
    tr = translate(parent, {'cat': child, 'wild': child2}, imgs, config=InvertConfig(space='w+', noise=True, steps=10))
    lat = tr.latents
    assert lat.space == 'w+' and lat.code.shape == (8, parent.num_ws, parent.w_dim)
    for label, g in (('cat', child), ('wild', child2)):
        np.testing.assert_allclose(tr.outputs[label], np.asarray(g.synthesis(lat.code, noise=lat.noise)), atol=1e-6)
    np.testing.assert_allclose(tr.recon, np.asarray(parent.synthesis(lat.code, noise=lat.noise)), atol=1e-6)
    assert tr.inversion is not None and tr.inversion.history.shape == (10, 8)
    names = [f'im{i}' for i in range(8)]
    paths = save_translation(tmp_path, names, tr, title='t')
    from PIL import Image

    assert Image.open(paths['grid']).size == (4 * 32 + 3 * 2, 8 * 32 + 7 * 2)
    page = paths['html'].read_text()
    assert 'translate/cat/im0.png' in page and 'recon/im7.png' in page and 'input/im1.png' in page
    assert (tmp_path / 'translate' / 'wild' / 'im3.png').is_file()


def test_translate_z_latents_stylealign(models):
    """StyleAlign I2I: a z inverted in the parent (psi 0.5) is decoded by each child with its *own* mapping
    network and w_avg, psi 0.5. (Z inversion itself: the invert.py CLI test and the slow tests.)"""
    parent, child, child2 = models
    assert (
        InvertConfig.stylealign().space,
        InvertConfig.stylealign().truncation_psi,
        InvertConfig.stylealign().steps,
    ) == ('z', 0.5, 500)
    z = np.random.RandomState(8).randn(3, parent.z_dim).astype(np.float32)
    lat = Latents(code=z, space='z', truncation_psi=0.5)
    tr = translate(parent, [child, child2], lat)
    for label, g in (('child0', child), ('child1', child2)):
        ref = g.synthesis(g.mapping(z, truncation_psi=0.5), noise_mode='const')
        np.testing.assert_allclose(tr.outputs[label], np.asarray(ref), atol=1e-6)
    # child2 has a fine-tuned mapping: decoding the parent's ws instead would differ
    assert not np.allclose(
        tr.outputs['child1'], np.asarray(child2.synthesis(parent.mapping(z, truncation_psi=0.5))), atol=1e-3
    )


# ----------------------------------------------------------------------------------------------------------
# Layer swapping.


def test_layer_swap_extremes_and_blocks(models, latents):
    parent, child, _ = models
    ws, noise = latents.code, latents.noise
    ref_p = np.asarray(parent.synthesis(ws, noise=noise))
    ref_c = np.asarray(child.synthesis(ws, noise=noise))
    np.testing.assert_array_equal(np.asarray(layer_swap(parent, child, 32).synthesis(ws, noise=noise)), ref_c)
    np.testing.assert_array_equal(np.asarray(layer_swap(parent, child, 2).synthesis(ws, noise=noise)), ref_p)
    np.testing.assert_array_equal(
        np.asarray(layer_swap(parent, child, 32, low='parent').synthesis(ws, noise=noise)), ref_p
    )
    mid = layer_swap(parent, child, 8)  # Toonify: b4, b8 from the child, b16, b32 from the parent
    for b in ('b4', 'b8', 'b16', 'b32'):
        src = child if b in ('b4', 'b8') else parent
        for x, y in zip(
            jax.tree_util.tree_leaves(mid.variables['params']['synthesis'][b]),
            jax.tree_util.tree_leaves(src.variables['params']['synthesis'][b]),
        ):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert mid.variables['params']['mapping'] is parent.variables['params']['mapping']
    out = np.asarray(mid.synthesis(ws, noise=noise))
    assert not np.allclose(out, ref_p) and not np.allclose(out, ref_c)
    soft = swap_alphas(parent.config, 8, width=0.5)
    assert all(soft[a] < soft[b] for a, b in ((4, 8), (8, 16), (16, 32)))
    assert swap_alphas(parent.config, 8) == {4: 0.0, 8: 0.0, 16: 1.0, 32: 1.0}
    sharp = swap_alphas(parent.config, 8, width=1e-3)
    assert all(abs(sharp[r] - v) < 1e-6 for r, v in swap_alphas(parent.config, 8).items())


# ----------------------------------------------------------------------------------------------------------
# Morphing.


def test_pair_synthesis_equals_lerped_weights(models, latents):
    from alignjax.apps.blend import pair_synthesis_jit

    parent, child, _ = models
    pa, pc = parent.variables['params']['synthesis'], child.variables['params']['synthesis']
    ts = [0.0, 0.3, 1.0]
    out = np.asarray(pair_synthesis_jit(parent.config, pa, pc, latents.code, latents.noise, jnp.asarray(ts)))
    for i, ti in enumerate(ts):
        g = parent.with_variables(lerp_variables(parent.variables, child.variables, ti))
        ref = np.asarray(g.synthesis(latents.code, noise=latents.noise))
        np.testing.assert_allclose(out[i], ref[i], atol=2e-5)
    # per-resolution coefficients reproduce a layer swap
    tt = jnp.asarray([[0.0, 0.0, 1.0, 1.0]] * 3)
    sw = np.asarray(pair_synthesis_jit(parent.config, pc, pa, latents.code, latents.noise, tt))
    ref = np.asarray(layer_swap(parent, child, 8).synthesis(latents.code, noise=latents.noise))
    np.testing.assert_allclose(sw, ref, atol=2e-5)
    bl = blend_variables(parent.variables, child.variables, {4: 0.0, 8: 0.0, 16: 0.0, 32: 0.0})
    np.testing.assert_array_equal(
        np.asarray(parent.with_variables(bl).synthesis(latents.code, noise=latents.noise)),
        np.asarray(parent.synthesis(latents.code, noise=latents.noise)),
    )


def test_morph_endpoints_continuity_and_reference(models, latents):
    parent, child, _ = models
    src = latents.take([0, 1])
    tgt = Latents(
        code=child.mapping(np.random.RandomState(9).randn(2, parent.z_dim).astype(np.float32)), space='w+'
    )  # no noise maps: the child's const noise
    frames = morph(parent, child, src, tgt, 24, chunk=16)
    assert frames.shape == (2, 24, 32, 32, 3)
    np.testing.assert_allclose(frames[:, 0], np.asarray(decode(parent, src)), atol=2e-5)
    np.testing.assert_allclose(frames[:, -1], np.asarray(decode(child, tgt)), atol=2e-5)
    # continuity: every step is small against the whole change, and halving the step halves it
    step = np.abs(np.diff(frames, axis=1)).mean(axis=(2, 3, 4))  # [N, F-1]
    total = np.abs(frames[:, -1] - frames[:, 0]).mean(axis=(1, 2, 3))
    assert np.all(step.max(axis=1) < 0.25 * total), (step.max(axis=1), total)
    fine = morph(parent, child, src, tgt, 47, chunk=16)
    fstep = np.abs(np.diff(fine, axis=1)).mean(axis=(2, 3, 4))
    assert np.all(fstep.max(axis=1) < 0.7 * step.max(axis=1))
    np.testing.assert_allclose(fine[:, ::2], frames, atol=5e-5)
    # chunking never changes a frame: 'auto' (all 48 frames in one call here) vs calls of 16
    np.testing.assert_allclose(morph(parent, child, src, tgt, 24), frames, atol=2e-5)
    # (frames equal renders with lerped weights: test_pair_synthesis_equals_lerped_weights; bench/morph.py
    # checks the 'reload' and 'vmap' implementations against 'fused')


def test_frames_per_call(models, monkeypatch):
    cfg = models[0].config
    assert frames_per_call(cfg, 110, 16) == 16  # 7 calls of 16 (the last padded by 2)
    assert frames_per_call(cfg, 110, 40) == 37  # evened out: 3 calls of 37, not 40 + 40 + 30
    assert frames_per_call(cfg, 5, 16) == 5
    assert frames_per_call(cfg, 110) == 110  # a 32^2 test model fits one call
    per_frame = max(s.res * s.res * 2 * s.out_channels for s in synthesis_layers(cfg))
    monkeypatch.setitem(CHUNK_BUDGET, jax.default_backend(), 30 * per_frame)
    assert frames_per_call(cfg, 110) == 28  # cap 30 -> 4 calls -> 28 each
    with pytest.raises(ValueError, match='chunk'):
        frames_per_call(cfg, 10, 0)


def test_morph_into_own_translation(models, latents):
    parent, child, _ = models
    src = latents.take([2])
    frames = morph(parent, child, src, None, 5, chunk=16)
    np.testing.assert_allclose(frames[0, 0], np.asarray(decode(parent, src))[0], atol=2e-5)
    np.testing.assert_allclose(frames[0, -1], np.asarray(decode(child, src))[0], atol=2e-5)
    # separate schedules: weights fixed at the parent, only the (constant) latent moves -> all frames equal
    still = morph(parent, child, src, None, 5, t_weights=np.zeros(5))
    np.testing.assert_allclose(still[0], np.broadcast_to(frames[0, 0], still[0].shape), atol=2e-5)


# ----------------------------------------------------------------------------------------------------------
# Writers and CLIs.


@pytest.mark.filterwarnings('ignore:os.fork')  # ffmpeg subprocesses (fork + exec) under JAX
def test_video_writers(tmp_path, monkeypatch, capsys):
    import imageio.v3 as iio

    rng = np.random.RandomState(0)
    frames = rng.uniform(-1, 1, (11, 16, 16, 3)).astype(np.float32)
    out = save_animation(tmp_path / 'm', frames, seconds=1.1, strip_frames=4, scale=2)
    gif = iio.imread(out['gif'], index=None)
    assert gif.shape == (11, 32, 32, 3)
    assert iio.imread(out['png']).shape == (32, 4 * 32, 3)
    ok, why = video.mp4_available()
    if ok:
        assert out['mp4'].suffix == '.mp4'
        assert iio.imread(out['mp4'], index=None).shape[0] == 11
    else:
        assert out['mp4'].suffix == '.gif'
    # no ffmpeg: clear message and a GIF instead
    monkeypatch.setattr(video, 'mp4_available', lambda: (False, 'no ffmpeg here'))
    monkeypatch.setattr(video, '_WARNED', set())
    p = video.write_mp4(tmp_path / 'n.mp4', frames, seconds=1.0)
    assert p.suffix == '.gif' and p.is_file()
    assert 'no ffmpeg here' in capsys.readouterr().err


@pytest.mark.parametrize('impl', ['conv_clamp', 'reference_ops', 'bfloat16'])
def test_morph_honours_impl(models, latents, impl):
    """The fused morph runs the flax modules' own layer functions: under any Impl (and conv_clamp) its endpoints
    are the parent's and the child's synthesis under the same Impl."""
    parent, child, _ = models
    kw = dict(
        reference_ops=dict(modconv='grouped', upconv='transpose', fir='depthwise'), bfloat16=dict(dtype='bfloat16')
    ).get(impl, {})
    p, c = parent.with_impl(**kw), child.with_impl(**kw)
    if impl == 'conv_clamp':  # small enough to bind on these activations
        p, c = (g.replace(config=g.config.replace(conv_clamp=0.3)) for g in (p, c))
    src = latents.take([0, 1])
    frames = morph(p, c, src, None, 3, chunk=16)
    for got, ref in ((frames[:, 0], np.asarray(decode(p, src))), (frames[:, -1], np.asarray(decode(c, src)))):
        if impl == 'bfloat16':  # the fused conv (both kernels in one) rounds apart from the plain one in bf16
            assert np.abs(got - ref).max() / np.abs(ref).max() < 0.03
        else:
            np.testing.assert_allclose(got, ref, atol=2e-5)
    assert np.abs(frames[:, 0] - frames[:, -1]).mean() > 1e-2  # a real child
    plain = morph(parent, child, src, None, 3, chunk=16)
    if impl == 'reference_ops':
        np.testing.assert_allclose(frames, plain, atol=1e-4)
    else:  # the clamp binds / bf16 rounds: not the default-Impl frames
        assert not np.allclose(frames, plain, atol=1e-6)


def test_morph_and_layer_swap_clis(tmp_path, fixtures_dir):
    import importlib

    import imageio.v3 as iio
    from PIL import Image

    ls_mod = importlib.import_module('alignjax.cli.layer_swap')  # (the package exports same-named functions)
    morph_mod = importlib.import_module('alignjax.cli.morph')
    from alignjax.invert.store import save_latents

    ck = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl')
    g = ck.generator()
    child = str(save_child_checkpoint(ck, tmp_path / 'child'))  # a real child, saved as a checkpoint
    z = np.random.RandomState(0).randn(2, 64).astype(np.float32)
    save_latents(tmp_path / 'src', ['s0', 's1'], Latents(code=np.asarray(z), space='z', truncation_psi=0.7))
    save_latents(tmp_path / 'tgt', ['t0'], Latents(code=np.asarray(g.mapping(z[:1])), space='w+'))
    morph_mod.main(
        [
            '--parent',
            str(fixtures_dir / 'nvlabs.pkl'),
            '--child',
            child,
            '--source-latents',
            str(tmp_path / 'src'),
            '--target-latents',
            str(tmp_path / 'tgt'),
            '--frames',
            '5',
            '--formats',
            'gif,png',
            '--outdir',
            str(tmp_path / 'morph'),
            '--no-progress',
        ]
    )
    assert (tmp_path / 'morph' / 's0_to_t0.gif').is_file() and (tmp_path / 'morph' / 's1_to_t0.png').is_file()
    assert (tmp_path / 'morph' / 'strips.png').is_file()
    # into its own translation (same latent): the frames move only because the child's weights differ
    morph_mod.main(
        [
            '--parent',
            str(fixtures_dir / 'nvlabs.pkl'),
            '--child',
            child,
            '--source-latents',
            str(tmp_path / 'src'),
            '--frames',
            '4',
            '--formats',
            'gif',
            '--outdir',
            str(tmp_path / 'own'),
            '--no-progress',
        ]
    )
    gif = iio.imread(tmp_path / 'own' / 's0.gif', index=None).astype(np.float32)
    assert gif.shape[0] == 4 and np.abs(gif[0] - gif[-1]).mean() > 2.0
    ls_mod.main(
        [
            '--parent',
            str(fixtures_dir / 'nvlabs.pkl'),
            '--child',
            child,
            '--latents',
            str(tmp_path / 'src'),
            '--swap-res',
            '8,16',
            '--outdir',
            str(tmp_path / 'ls'),
        ]
    )
    assert Image.open(tmp_path / 'ls' / 'layer_swap.png').size == (4 * 32 + 3 * 2, 2 * 32 + 2)
    cols = {c: np.asarray(Image.open(tmp_path / 'ls' / c / 's0.png'), np.float32) for c in ('parent', 'swap8', 'child')}
    for a, b in (('parent', 'child'), ('parent', 'swap8'), ('swap8', 'child')):
        assert np.abs(cols[a] - cols[b]).mean() > 1.0, (a, b)
    assert json.loads((tmp_path / 'src' / 'inversion.json').read_text())['space'] == 'z'
