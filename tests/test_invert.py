"""Inversion: recovery of generated images, batch invariance, stopping, schedule, losses, LPIPS vs a torch
reference, image loading, latents I/O and the invert.py CLI on real photos (read from shared/realdata)."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REALDATA, require_files

import alignjax as aj
from alignjax.errors import AlignjaxError, InputError, MissingEntryError, MissingFileError
from alignjax.invert import (
    InvertConfig,
    Latents,
    PixelSSIM,
    decode,
    invert,
    load_lpips,
    make_loss,
    ms_ssim,
    noise_regularization,
    psnr,
    ssim,
    w_stats,
)
from alignjax.invert import lpips as L
from alignjax.invert import project as P


@functools.cache
def tiny_generator(seed=0, ch=32):
    """32x32 generator small enough for 1000-step tests, with randomised noise strengths (init has 0) and
    w_avg set (init has 0). Cached: tests/test_apps.py uses the same object (and compiled functions)."""
    g = aj.new_generator(
        jax.random.key(seed), resolution=32, z_dim=32, w_dim=32, channel_base=32 * ch, channel_max=ch, mapping_layers=2
    )
    v = jax.tree_util.tree_map(lambda x: x, g.variables)
    rng = np.random.RandomState(seed)
    syn = v['params']['synthesis']
    for b in sorted(syn):
        for layer in sorted(syn[b]):
            if isinstance(syn[b][layer], dict) and 'noise_strength' in syn[b][layer]:
                syn[b][layer]['noise_strength'] = jnp.asarray(rng.uniform(0.05, 0.3), jnp.float32)
    g = g.with_variables(v)
    v['buffers']['mapping']['w_avg'] = jnp.asarray(w_stats(g, n=2000, batch=2000)[0])
    return g.with_variables(v)


@pytest.fixture(scope='module')
def gen():
    return tiny_generator()


@pytest.fixture(scope='module')
def stats(gen):
    return w_stats(gen, batch=2000)


@pytest.fixture(scope='module')
def targets(gen):
    z = np.random.RandomState(5).randn(8, gen.z_dim).astype(np.float32)
    ws = gen.mapping(z)
    return ws, np.asarray(gen.synthesis(ws, noise_mode='const'))


@pytest.fixture(scope='module')
def wplus(gen, targets, stats):
    """Default settings (1000 steps), W+ with noise maps, batch of 8 generated images."""
    return invert(gen, targets[1], InvertConfig(space='w+', noise=True), stats=stats, progress=False)


def test_wplus_noise_recovers_generated_images(gen, targets, wplus):
    assert wplus.history.shape == (1000, 8)
    assert np.all(wplus.steps_run == 1000)
    # 32x32 tiny G, default steps: measured mean 32.3 dB, min 30.4 dB (fixture G: see the slow test)
    assert wplus.psnr.mean() >= 30.0, wplus.psnr
    assert wplus.psnr.min() >= 28.0, wplus.psnr
    h = wplus.history
    assert np.nanmean(h[-10:]) < 0.1 * np.nanmean(h[:10])
    lat = wplus.latents
    assert lat.space == 'w+' and lat.code.shape == (8, gen.num_ws, gen.w_dim)
    # latents decode to the reported reconstructions; noise maps stay normalised
    np.testing.assert_allclose(np.asarray(decode(gen, lat)), wplus.images, atol=1e-5)
    for k, m in lat.noise.items():
        m = np.asarray(m)
        assert m.shape[1:] == gen.noise_shapes[k]
        np.testing.assert_allclose(m.mean(axis=(1, 2)), 0, atol=1e-4)
        np.testing.assert_allclose(m.std(axis=(1, 2)), 1, atol=1e-3)
    np.testing.assert_allclose(wplus.psnr, np.asarray(psnr(wplus.images, targets[1])), atol=1e-4)


def test_batch_of_8_equals_one_at_a_time(gen, targets, stats):
    cfg = InvertConfig(space='w+', noise=True, steps=40)
    batched = invert(gen, targets[1], cfg, stats=stats, progress=False, seed=3)
    for i in (0, 5):
        single = invert(gen, targets[1][i : i + 1], cfg, stats=stats, progress=False, seed=3, ids=[i])
        np.testing.assert_allclose(np.asarray(single.latents.code[0]), np.asarray(batched.latents.code[i]), atol=2e-4)
        for k in single.latents.noise:
            np.testing.assert_allclose(
                np.asarray(single.latents.noise[k][0]), np.asarray(batched.latents.noise[k][i]), atol=2e-3
            )
        np.testing.assert_allclose(single.history[:, 0], batched.history[:, i], rtol=1e-3)
        assert abs(single.psnr[0] - batched.psnr[i]) < 0.05
    # batch_size splitting (9 images: 8 + 1 padded to 8) gives the same per-image result too
    nine = np.concatenate([targets[1], targets[1][:1, ::-1]])
    split = invert(gen, nine, cfg, stats=stats, progress=False, seed=3, batch_size=8)
    assert split.latents.code.shape[0] == 9 and split.history.shape == (40, 9)
    np.testing.assert_allclose(np.asarray(split.latents.code[:8]), np.asarray(batched.latents.code), atol=2e-4)


def test_per_image_stopping(gen, targets, stats):
    cfg = InvertConfig(space='w+', noise=True, steps=60, stop_below=0.0)  # nothing stops
    free = invert(gen, targets[1], cfg, stats=stats, progress=False)
    thr = float(np.median(free.history[30]))
    stopped = invert(gen, targets[1], cfg.replace(stop_below=thr), stats=stats, progress=False)
    assert stopped.steps_run.min() < 60 and stopped.steps_run.max() <= 60
    for i, n in enumerate(stopped.steps_run):
        assert np.all(np.isfinite(stopped.history[:n, i])) and np.all(np.isnan(stopped.history[n:, i]))
        if n < 60:
            assert stopped.history[n - 1, i] < thr
    # an image that stopped never changes again: its state equals the free run at that step's end only if
    # it did not stop; here just check the patience rule stops every image eventually
    pat = invert(gen, targets[1], cfg.replace(stop_patience=1, stop_min_delta=0.5), stats=stats, progress=False)
    assert np.all(pat.steps_run < 60)


def test_schedule_matches_nvlabs():
    hp = dict(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25, std=2.0, latent_noise=0.05, latent_noise_ramp=0.75)
    for step in (0, 10, 49, 50, 400, 760, 999):
        t = step / 1000
        ramp = min(1.0, (1.0 - t) / 0.25)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / 0.05)
        noise = 2.0 * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
        lr, ns = P.schedule(jnp.float32(step), jnp.float32(1000), {k: jnp.float32(v) for k, v in hp.items()})
        assert abs(float(lr) - 0.1 * ramp) < 1e-6 and abs(float(ns) - noise) < 1e-6


def test_noise_regularization_matches_reference():
    rng = np.random.RandomState(0)
    maps = {'a': rng.randn(2, 32, 32).astype(np.float32), 'b': rng.randn(2, 4, 4).astype(np.float32)}
    ref = np.zeros(2)
    for m in maps.values():
        for i in range(2):
            x = m[i].astype(np.float64)
            while True:
                ref[i] += np.mean(x * np.roll(x, 1, axis=1)) ** 2 + np.mean(x * np.roll(x, 1, axis=0)) ** 2
                if x.shape[0] <= 8:
                    break
                x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(np.asarray(noise_regularization(maps)), ref, rtol=1e-4)


def test_ssim_and_pixel_loss():
    rng = np.random.RandomState(0)
    a = np.clip(rng.randn(2, 32, 32, 3) * 0.5, -1, 1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ssim(a, a)), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ms_ssim(a, a)), 1.0, atol=1e-5)
    b1 = a + 0.05 * rng.randn(*a.shape).astype(np.float32)
    b2 = a + 0.3 * rng.randn(*a.shape).astype(np.float32)
    assert np.all(np.asarray(ssim(a, b1)) > np.asarray(ssim(a, b2)))
    d = np.asarray(PixelSSIM()(a, b2))
    assert d.shape == (2,) and np.all(d > np.asarray(PixelSSIM()(a, b1)))
    assert np.all(np.asarray(PixelSSIM()(a, a)) < 1e-6)
    with pytest.raises(ValueError):
        make_loss('lpips')


def test_dfeat_loss_with_fixture_discriminator(fixtures_dir):
    ck = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl')
    loss = make_loss('dfeat', disc=ck.discriminator())
    rng = np.random.RandomState(0)
    a = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)  # batch 3: not a multiple of mbstd group 4
    b = a + 0.1 * rng.randn(*a.shape).astype(np.float32)
    b2 = b.copy()
    b2[2] = -b2[2]
    f = jax.jit(lambda l, x, y: l(x, y))
    d, d2, d0 = (np.asarray(f(loss, a, y)) for y in (b, b2, a))
    assert d.shape == (3,) and np.all(d > 0)
    np.testing.assert_allclose(d0, 0, atol=1e-6)
    # per image: changing image 2 leaves the distances of images 0 and 1 unchanged
    np.testing.assert_allclose(d2[:2], d[:2], rtol=1e-5)
    assert d2[2] > d[2]


# ----------------------------------------------------------------------------------------------------------
# LPIPS against a torch implementation of the lpips package's formula, with random weights in the two files.


@pytest.mark.torch
def test_lpips_matches_torch_reference(tmp_path):
    torch = pytest.importorskip('torch')
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    vgg_sd = {}
    for i, (cin, cout) in zip(L.VGG16_CONVS, L.VGG16_CHANNELS):
        vgg_sd[f'features.{i}.weight'] = torch.randn(cout, cin, 3, 3, generator=g) * math.sqrt(2 / (9 * cin))
        vgg_sd[f'features.{i}.bias'] = torch.randn(cout, generator=g) * 0.1
    vgg_sd['classifier.0.weight'] = torch.zeros(4, 4)
    lin_sd = {f'lin{k}.model.1.weight': torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(L.LPIPS_CHANNELS)}
    torch.save(vgg_sd, tmp_path / 'vgg16.pth')
    torch.save(lin_sd, tmp_path / 'vgg.pth', _use_new_zipfile_serialization=False)  # legacy format

    def ref(x0, x1):
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        taps = []
        for x in (x0, x1):
            x = (x - shift) / scale
            out = []
            for j, i in enumerate(L.VGG16_CONVS):
                if j in (2, 4, 7, 10):
                    x = F.max_pool2d(x, 2, 2)
                x = F.relu(F.conv2d(x, vgg_sd[f'features.{i}.weight'], vgg_sd[f'features.{i}.bias'], padding=1))
                if j in (1, 3, 6, 9, 12):
                    out.append(x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10))
            taps.append(out)
        val = 0
        for k, (a, b) in enumerate(zip(*taps)):
            val = val + F.conv2d((a - b) ** 2, lin_sd[f'lin{k}.model.1.weight']).mean(dim=(2, 3))
        return val[:, 0]

    rng = np.random.RandomState(0)
    x0 = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    x1 = np.clip(x0 + 0.3 * rng.randn(*x0.shape), -1, 1).astype(np.float32)
    lp = load_lpips(tmp_path / 'vgg16.pth', tmp_path / 'vgg.pth')
    ours = np.asarray(jax.jit(lambda l, a, b: l(a, b))(lp, x0, x1))
    with torch.no_grad():
        theirs = ref(torch.from_numpy(x0).permute(0, 3, 1, 2), torch.from_numpy(x1).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(lp(x0, x0)), 0, atol=1e-7)
    # a full lpips state dict (trunk as net.sliceK.N + heads) in one file
    full = {f'net.slice1.{i}.{p}': vgg_sd[f'features.{i}.{p}'] for i in L.VGG16_CONVS for p in ('weight', 'bias')}
    full.update(lin_sd)
    torch.save(full, tmp_path / 'lpips_full.pth')
    np.testing.assert_allclose(np.asarray(load_lpips(tmp_path / 'lpips_full.pth')(x0, x1)), ours, rtol=1e-5)
    with pytest.raises(ValueError, match='VGG16'):
        load_lpips(tmp_path / 'vgg.pth', tmp_path / 'vgg.pth')


def test_lpips_area_resize():
    x = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    y = np.asarray(L.area_resize(jnp.asarray(x), 4))
    np.testing.assert_allclose(y[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)))


# ----------------------------------------------------------------------------------------------------------
# Files.


def test_load_images_files_folders_and_names(tmp_path):
    from PIL import Image

    from alignjax.invert.images import load_images

    rng = np.random.RandomState(0)
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    Image.fromarray(rng.randint(0, 255, (40, 60, 3), np.uint8)).save(tmp_path / 'a' / 'x.png')
    Image.fromarray(rng.randint(0, 255, (50, 50, 4), np.uint8), 'RGBA').save(tmp_path / 'a' / 'y.png')
    Image.fromarray(rng.randint(0, 255, (50, 30), np.uint8), 'L').save(tmp_path / 'b' / 'x.jpg')
    names, imgs = load_images([tmp_path / 'a', tmp_path / 'b'], 16)
    assert imgs.shape == (3, 16, 16, 3) and imgs.dtype == np.uint8
    assert names == ['a__x_png', 'y', 'b__x_jpg']
    names1, imgs1 = load_images(tmp_path / 'a' / 'y.png', 16)
    assert names1 == ['y'] and np.array_equal(imgs1[0], imgs[names.index('y')])
    with pytest.raises(FileNotFoundError):
        load_images(tmp_path / 'missing', 16)


def test_save_load_latents_roundtrip(tmp_path, gen):
    from alignjax.invert.store import load_latents, save_latents

    rng = np.random.RandomState(0)
    lat = Latents(
        code=rng.randn(2, gen.num_ws, gen.w_dim).astype(np.float32),
        noise={k: rng.randn(2, *s).astype(np.float32) for k, s in gen.noise_shapes.items()},
        space='w+',
    )
    save_latents(tmp_path, ['b', 'a'], lat, dict(ckpt='x'))
    with np.load(tmp_path / 'latents.npz') as z:
        assert sorted(z.files) == ['a', 'b'] and z['b'].shape == (gen.num_ws, gen.w_dim)
    names, back = load_latents(tmp_path)
    assert names == ['b', 'a'] and back.space == 'w+'
    np.testing.assert_array_equal(back.code, lat.code)
    for k in lat.noise:
        np.testing.assert_array_equal(back.noise[k], lat.noise[k])
    _, one = load_latents(tmp_path / 'latents.npz', names=['a'])
    np.testing.assert_array_equal(one.code[0], lat.code[1])
    zl = Latents(code=rng.randn(2, gen.z_dim).astype(np.float32), space='z', truncation_psi=0.5)
    save_latents(tmp_path / 'z', ['p', 'q'], zl)
    _, zb = load_latents(tmp_path / 'z')
    assert zb.space == 'z' and zb.truncation_psi == 0.5 and zb.noise is None
    np.testing.assert_allclose(np.asarray(zb.ws(gen)), np.asarray(gen.mapping(zl.code, truncation_psi=0.5)))
    # what cannot be read is an AlignjaxError naming the file (a CLI prints it as one line)
    with pytest.raises(MissingEntryError, match=r"latents.npz has no entries \['c'\]"):
        load_latents(tmp_path, names=['c'])
    with pytest.raises(MissingFileError, match='no such inversion folder'):
        load_latents(tmp_path / 'nowhere')
    (tmp_path / 'noise.npz').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(InputError, match=r'noise.npz: not a readable .npz file'):
        load_latents(tmp_path)
    save_latents(tmp_path / 'n', ['a'], Latents(code=lat.code[:1], noise={k: v[:1] for k, v in lat.noise.items()}))
    np.savez(tmp_path / 'n' / 'noise.npz', **{'b/x': np.zeros(1)})
    with pytest.raises(MissingEntryError, match=r"noise.npz has no entries \['a/"):
        load_latents(tmp_path / 'n')
    for cls in (MissingEntryError, MissingFileError, InputError):
        assert issubclass(cls, AlignjaxError)


def _real_photos():
    files = require_files(REALDATA / 'celebamask_hq_samples')
    files += require_files(REALDATA / 'stylealign_official' / 'example' / 'dog')[:2]
    return files


def test_cli_real_photos_end_to_end(tmp_path, fixtures_dir, capsys):
    """invert.py on real photos (read from shared/realdata, never copied) with the 32x32 fixture as parent, in
    StyleAlign's setting (Z, psi 0.5), translated by a child checkpoint. Quality is poor by construction (a
    random 32x32 parent); it must run and write everything."""
    from conftest import save_child_checkpoint

    from alignjax.cli.invert import main

    files = _real_photos()
    out = tmp_path / 'out'
    child = save_child_checkpoint(aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl'), tmp_path / 'tf')  # a real child
    main(
        [
            '--ckpt',
            str(fixtures_dir / 'nvlabs.pkl'),
            '--images',
            *map(str, files),
            '--preset',
            'stylealign',
            '--steps',
            '5',
            '--batch',
            '8',
            '--outdir',
            str(out),
            '--translate',
            str(child),
            '--no-progress',
        ]
    )
    names = [f.stem for f in files]
    with np.load(out / 'latents.npz') as z:
        assert sorted(z.files) == sorted(names) and z[names[0]].shape == (64,)
    metrics = json.loads((out / 'metrics.json').read_text())
    assert sorted(metrics['images']) == sorted(names)
    for n in names:
        m = metrics['images'][n]
        assert math.isfinite(m['loss']) and math.isfinite(m['psnr']) and m['steps'] == 5
        assert (out / 'recon' / f'{n}.png').is_file() and (out / 'input' / f'{n}.png').is_file()
        assert (out / 'translate' / 'tf' / f'{n}.png').is_file()
    info = json.loads((out / 'inversion.json').read_text())
    assert info['space'] == 'z' and info['truncation_psi'] == 0.5 and info['names'] == names
    assert (out / 'noise.npz').is_file()
    assert 'tf' in (out / 'translate.html').read_text()
    from PIL import Image

    grid = Image.open(out / 'translate.png')
    assert grid.size == (3 * 32 + 2 * 2, len(names) * 32 + (len(names) - 1) * 2)  # input | recon | child
    for n in names:  # the translation is the child's, not the reconstruction
        recon = np.asarray(Image.open(out / 'recon' / f'{n}.png'), np.float32)
        assert np.abs(recon - np.asarray(Image.open(out / 'translate' / 'tf' / f'{n}.png'), np.float32)).mean() > 1
    assert 'mean PSNR' in capsys.readouterr().out


@pytest.mark.slow
def test_fixture_default_steps_all_spaces(fixtures_dir):
    """The 32x32 fixture generator, NVlabs defaults (1000 steps), PixelSSIM loss, 8 generated images.
    Measured (CPU): W+ noise 33.1 dB mean (min 31.4), see docs/performance.md."""
    g = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl').generator()
    z = np.random.RandomState(5).randn(8, 64).astype(np.float32)
    target = np.asarray(g.synthesis(g.mapping(z), noise_mode='const'))
    st = w_stats(g)
    r = invert(g, target, InvertConfig(space='w+', noise=True), stats=st, progress=False)
    assert r.psnr.min() >= 30.0, r.psnr
    for space in ('w', 'z'):
        r = invert(g, target, InvertConfig(space=space, noise=True), stats=st, progress=False)
        print(space, r.psnr.round(2), r.psnr.mean())
        assert r.psnr.mean() >= 15.0
