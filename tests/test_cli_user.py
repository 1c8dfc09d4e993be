"""What a new user meets in the command lines (issue 16): inputs saved as they were read, one `error:` line
instead of a traceback (checked before any expensive work), messages that name the right thing, Unicode names,
bad and tiny photos, the `nvlabs` preset, one flag vocabulary; and symlink loops in `folder:` datasets
(issue 15 item 6). Tiny 16x16 models; the child is a perturbed copy of the parent, saved as a checkpoint."""

import contextlib
import importlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REALDATA as SHARED_REALDATA
from conftest import require_files
from PIL import Image

import alignjax as aj
from alignjax.apps import morphing
from alignjax.invert import Latents, w_stats
from alignjax.invert.store import save_latents

ROOT = pathlib.Path(__file__).resolve().parents[1]
REALDATA = SHARED_REALDATA / 'celebamask_hq_samples'
morph_cli = importlib.import_module('alignjax.cli.morph')
swap_cli = importlib.import_module('alignjax.cli.layer_swap')


def _tiny(seed, w_dim=16):
    g = aj.new_generator(
        jax.random.key(seed), resolution=16, z_dim=16, w_dim=w_dim, channel_base=256, channel_max=16, mapping_layers=2
    )
    v = jax.tree_util.tree_map(lambda x: x, g.variables)
    rng = np.random.RandomState(seed)
    syn = v['params']['synthesis']
    for b in syn:
        for layer in syn[b].values():
            if isinstance(layer, dict) and 'noise_strength' in layer:
                layer['noise_strength'] = jnp.asarray(rng.uniform(0.05, 0.3), jnp.float32)
    g = g.with_variables(v)
    v['buffers']['mapping']['w_avg'] = jnp.asarray(w_stats(g, n=2000, batch=2000)[0])
    return g.with_variables(v)


def _child_of(parent, seed=1, scale=0.3):
    """A fine-tuned stand-in: every synthesis conv weight perturbed (so it differs, but stays aligned)."""
    rng = np.random.RandomState(seed)
    v = jax.tree_util.tree_map(lambda x: x, parent.variables)
    leaves, tdef = jax.tree_util.tree_flatten(v['params']['synthesis'])
    v['params']['synthesis'] = jax.tree_util.tree_unflatten(
        tdef, [x + scale * np.asarray(rng.randn(*np.shape(x)), np.float32) * (np.std(x) + 0.05) for x in leaves]
    )
    return parent.with_variables(v)


def _save(gen, path):
    aj.Checkpoint(gen.config, None, {'G_ema': gen.variables}).save(path)
    return str(path)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpts')
    parent = _tiny(0)
    child = _child_of(parent)
    other = _tiny(3, w_dim=8)  # another architecture: not aligned with the parent
    return dict(
        parent=_save(parent, d / 'parent'),
        child=_save(child, d / 'child'),
        other=_save(other, d / 'other'),
        gen=parent,
        child_gen=child,
        other_gen=other,
    )


def _err(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def _exits(fn, argv, capsys, code=1):
    with pytest.raises(SystemExit) as e:
        fn(argv)
    assert e.value.code == code
    return _err(capsys)


@contextlib.contextmanager
def _no_inversion(monkeypatch):
    """Fail the test if anything is inverted (the checks must come before the expensive work)."""

    def boom(*a, **k):
        raise AssertionError('inverted before checking')

    import alignjax.invert
    import alignjax.invert.project

    monkeypatch.setattr(alignjax.invert, 'invert', boom)
    monkeypatch.setattr(alignjax.invert.project, 'invert', boom)
    monkeypatch.setattr(alignjax.invert.project, '_invert_batch', boom)
    yield


# ----------------------------------------------------------------------------------------------------------
# invert.py --translate on real photos, Unicode names, a bad and a tiny file (items 1, 4, 6).


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    files = require_files(REALDATA, n=2)[:2]
    d = tmp_path_factory.mktemp('photos')
    # Unicode names point at the real photos (links: the photos are never copied into the repo or tmp)
    os.symlink(files[0], d / '猫.jpg')
    os.symlink(files[1], d / '犬.jpg')
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(d / 'dot.png')  # 1x1: upsampled 16x
    (d / 'empty.png').write_bytes(b'')  # a bad photo
    return d


@pytest.fixture(scope='module')
def translated(ckpts, photos, tmp_path_factory):
    """One invert.py --translate run (default preset, 3 steps) over the photo folder, stderr captured."""
    import io

    from alignjax.cli.invert import main

    out = tmp_path_factory.mktemp('inv') / 'out'
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(
            [
                '--ckpt',
                ckpts['parent'],
                '--images',
                str(photos),
                '--steps',
                '3',
                '--skip-bad',
                '--translate',
                ckpts['child'],
                '--outdir',
                str(out),
                '--no-progress',
            ]
        )
    assert rc == 0
    return out, err.getvalue()


def test_translate_saves_the_source_images(translated, photos, ckpts):
    """Item 1: the input PNGs and the input column of translate.png are the images read, not white."""
    from alignjax.data import decode_image

    out, _ = translated
    metrics = json.loads((out / 'metrics.json').read_text(encoding='utf-8'))
    grid = np.asarray(Image.open(out / 'translate.png'))
    names = json.loads((out / 'inversion.json').read_text(encoding='utf-8'))['names']
    for row, name in enumerate(names):
        src = decode_image(metrics['images'][name]['source'], 16)
        saved = np.asarray(Image.open(out / 'input' / f'{name}.png'))
        np.testing.assert_array_equal(saved, src)
        np.testing.assert_array_equal(grid[row * 18 : row * 18 + 16, :16], src)
    recon = np.asarray(Image.open(out / 'recon' / f'{names[0]}.png'), np.float32)
    trans = np.asarray(Image.open(out / 'translate' / 'child' / f'{names[0]}.png'), np.float32)
    assert np.abs(recon - trans).mean() > 1.0  # the child is not the parent


def test_unicode_names_sources_skip_and_tiny_warning(translated, photos):
    """Item 4: Unicode stems kept and mapped to their sources; a 0-byte photo skipped (and recorded); the 1x1
    photo inverted with a warning that it is upsampled 16x."""
    out, err = translated
    metrics = json.loads((out / 'metrics.json').read_text(encoding='utf-8'))
    assert sorted(metrics['images']) == sorted(['dot', '猫', '犬'])
    assert metrics['images']['猫']['source'] == str(photos / '猫.jpg')
    assert (out / 'input' / '猫.png').is_file() and (out / 'recon' / '犬.png').is_file()
    with np.load(out / 'latents.npz') as z:
        assert sorted(z.files) == sorted(['dot', '猫', '犬'])
    assert metrics['skipped'] == {str(photos / 'empty.png'): 'zero-byte file'}
    assert 'skipped' in err and 'empty.png' in err
    tiny = [w for w in metrics['warnings'] if 'dot.png' in w]
    assert tiny and 'upsampled 16x' in tiny[0] and 'warning: ' + tiny[0] in err
    assert '猫' in (out / 'translate.html').read_text(encoding='utf-8')
    assert not list(out.rglob('.*'))  # no temporary or probe files left behind


def test_save_translation_keeps_uint8_inputs(tmp_path):
    """Item 1 at the library level: uint8 inputs are pixels, not [-1, 1] floats (they came out white)."""
    from alignjax.apps import Translation, save_translation

    rng = np.random.RandomState(0)
    src = rng.randint(0, 255, (2, 8, 8, 3)).astype(np.uint8)
    recon = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    tr = Translation(
        latents=Latents(code=np.zeros((2, 4, 4), np.float32)), inputs=src, recon=recon, outputs={'kid': -recon}
    )
    save_translation(tmp_path, ['a', 'b'], tr)
    for i, n in enumerate('ab'):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'input' / f'{n}.png')), src[i])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'translate.png'))[10:18, :8], src[1])


def test_nvlabs_preset_config():
    """Item 6: the `nvlabs` preset is projector.py's settings: one W, noise maps from N(0, 1), NVlabs numbers."""
    from alignjax.invert import PRESETS, InvertConfig

    cfg = PRESETS['nvlabs']()
    assert (cfg.space, cfg.noise, cfg.noise_init) == ('w', True, 'random')
    got = (
        cfg.lr,
        cfg.steps,
        cfg.noise_reg,
        cfg.latent_noise,
        cfg.latent_noise_ramp,
        cfg.lr_rampup,
        cfg.lr_rampdown,
        cfg.w_avg_samples,
        cfg.w_avg_seed,
    )
    assert got == (0.1, 1000, 1e5, 0.05, 0.75, 0.05, 0.25, 10000, 123)
    assert InvertConfig.stylealign().space == 'z'


def test_nvlabs_preset_is_one_w_plus_noise_maps(translated, ckpts):
    """Item 6 through invert.py (default preset): every W row equal, noise maps optimised and renormalised."""
    from alignjax.invert.project import const_noise

    out, _ = translated
    info = json.loads((out / 'inversion.json').read_text(encoding='utf-8'))
    assert info['space'] == 'w' and info['preset'] == 'nvlabs' and info['config']['noise_init'] == 'random'
    with np.load(out / 'latents.npz') as z:
        ws = z['猫']
    assert ws.shape == (ckpts['gen'].num_ws, 16) and np.allclose(ws, ws[:1])
    with np.load(out / 'noise.npz') as z:
        k = next(iter(ckpts['gen'].noise_shapes))
        m = z[f'猫/{k}']
    assert not np.allclose(m, np.asarray(const_noise(ckpts['gen'])[k]))  # random start, not the stored map
    assert abs(m.mean()) < 1e-4 and abs(m.std() - 1) < 1e-3  # renormalised


def test_invert_bad_photo_fails_with_one_line_before_inverting(ckpts, photos, capsys, monkeypatch):
    """Item 2/3: a 0-byte photo stops invert.py with the same words as a training dataset, and a hint."""
    from alignjax.cli.invert import main
    from alignjax.data import BadImageError, make_dataset

    with _no_inversion(monkeypatch):
        line = _exits(
            main, ['--ckpt', ckpts['parent'], '--images', str(photos), '--outdir', str(photos.parent / 'x')], capsys
        )
    core = f"bad image file '{photos / 'empty.png'}': zero-byte file"
    assert line.startswith('error: ' + core) and '--skip-bad' in line
    with pytest.raises(BadImageError) as e:
        make_dataset(f'folder:{photos}', 16)
    assert str(e.value).startswith(core)


def test_invert_checks_outdir_and_child_first(ckpts, photos, tmp_path, capsys, monkeypatch):
    from alignjax.cli.invert import main

    afile = tmp_path / 'afile'
    afile.write_text('x')
    with _no_inversion(monkeypatch):
        line = _exits(main, ['--ckpt', ckpts['parent'], '--images', str(photos), '--outdir', str(afile)], capsys)
        assert line == f'error: --outdir {afile} is a file, not a folder'
        line = _exits(
            main,
            [
                '--ckpt',
                ckpts['parent'],
                '--images',
                str(photos),
                '--outdir',
                str(tmp_path / 'o'),
                '--translate',
                ckpts['other'],
            ],
            capsys,
        )
    assert 'are not aligned' in line and 'w_dim 16 vs 8' in line and 'impl' not in line


# ----------------------------------------------------------------------------------------------------------
# apps CLIs (item 2, 3).


def test_morph_refuses_unaligned_child_and_foreign_latents_before_inverting(
    ckpts, photos, tmp_path, capsys, monkeypatch
):
    other = ckpts['other_gen']
    save_latents(tmp_path / 'foreign', ['a'], Latents(code=np.asarray(other.mapping(np.zeros((1, 16)))), space='w+'))
    with _no_inversion(monkeypatch):
        line = _exits(
            morph_cli.main,
            [
                '--parent',
                ckpts['parent'],
                '--child',
                ckpts['other'],
                '--source',
                str(photos / '猫.jpg'),
                '--outdir',
                str(tmp_path / 'm'),
            ],
            capsys,
        )
        assert 'are not aligned' in line and 'w_dim' in line and 'impl' not in line
        line = _exits(
            morph_cli.main,
            [
                '--parent',
                ckpts['parent'],
                '--child',
                ckpts['child'],
                '--source-latents',
                str(tmp_path / 'foreign'),
                '--outdir',
                str(tmp_path / 'm'),
            ],
            capsys,
        )
        assert 'do not fit' in line and '[6, 8]' in line and '[6, 16]' in line
        # the target photos are read (and a bad one reported) before the source is inverted
        line = _exits(
            morph_cli.main,
            [
                '--parent',
                ckpts['parent'],
                '--child',
                ckpts['child'],
                '--source',
                str(photos / '猫.jpg'),
                '--target',
                str(photos / 'empty.png'),
                '--outdir',
                str(tmp_path / 'm'),
            ],
            capsys,
        )
        assert 'zero-byte file' in line
    with pytest.raises(ValueError, match='do not fit'):  # the Python API says so too (not a dot_general error)
        morphing.morph(ckpts['gen'], ckpts['child_gen'], Latents(code=np.zeros((1, 6, 8), np.float32)), frames=2)


def test_layer_swap_latents_errors_and_default_seeds(ckpts, tmp_path, capsys):
    base = ['--parent', ckpts['parent'], '--child', ckpts['child'], '--outdir', str(tmp_path / 'ls')]
    missing = tmp_path / 'nope'
    line = _exits(swap_cli.main, base + ['--latents', str(missing)], capsys)
    assert line.startswith(f'error: {missing}: no such inversion folder')  # the folder, not .../latents.npz
    save_latents(tmp_path / 'foreign', ['a'], Latents(code=np.zeros((1, 6, 8), np.float32), space='w+'))
    line = _exits(swap_cli.main, base + ['--latents', str(tmp_path / 'foreign')], capsys)
    assert 'do not fit' in line
    assert _exits(swap_cli.main, base + ['--seeds', 'x'], capsys).startswith("error: --seeds 'x'")
    assert swap_cli.main(base + ['--swap-res', '8']) == 0  # default seeds: 0-7, as generate
    grid = Image.open(tmp_path / 'ls' / 'layer_swap.png')
    assert grid.size == (3 * 16 + 2 * 2, 8 * 16 + 7 * 2)


def test_check_compatible_ignores_impl_and_warns_on_unrelated_weights(ckpts, capsys):
    from alignjax.apps import check_compatible
    from alignjax.cli.invert import check_aligned

    check_compatible(ckpts['gen'], ckpts['child_gen'].with_impl(dtype='bfloat16'))
    with pytest.raises(ValueError) as e:
        check_compatible(ckpts['gen'], ckpts['other_gen'])
    assert 'impl' not in str(e.value) and 'w_dim 16 vs 8' in str(e.value)
    check_aligned(ckpts['gen'], ckpts['child_gen'], 'p', 'c')
    assert 'warning' not in capsys.readouterr().err
    stranger = aj.new_generator(jax.random.key(7), config=ckpts['gen'].config)  # same shapes, own weights
    check_aligned(ckpts['gen'], stranger, 'p', 's')
    assert 'warning: s does not look fine-tuned from p' in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------
# the generator CLIs in alignjax/cli/ (issue 10 step 4): --help, multi-value flags, old spellings.

GEN_CLIS = {
    'generate': 'Render images from a checkpoint',
    'invert': 'Project images into a generator',
    'morph': 'Cross-domain morph',
    'layer_swap': 'Layer swapping (Toonify)',
}


@pytest.mark.parametrize('name', sorted(GEN_CLIS))
def test_generator_cli_help(name, capsys):
    mod = importlib.import_module(f'alignjax.cli.{name}')
    with pytest.raises(SystemExit) as e:
        mod.main(['--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f'usage: alignjax-{name.replace("_", "-")} [flags]') and GEN_CLIS[name] in out
    assert '--outdir' in out and '--[no]debug' in out and ('--ckpt' in out or '--parent' in out)
    assert ('--[no]noise' in out) == (name in ('invert', 'morph'))


def test_multi_value_flags_spaces_repeats_and_commas(tmp_path, capsys):
    from alignjax.cli import _apps, invert, morph

    comma = tmp_path / 'a,b.png'
    comma.write_bytes(b'')
    a = _apps.parse(
        invert.command(),
        [
            '--ckpt',
            'p',
            '--images',
            'x',
            'y',
            '--images=z,w',
            '--images',
            str(comma),
            '--outdir',
            'o',
            '--translate',
            'c1.pkl',
            'c2.pkl',
            '--no-noise',
        ],
        invert.MULTI,
    )
    assert a.images == ['x', 'y', 'z', 'w', str(comma)] and a.translate == ['c1.pkl', 'c2.pkl']
    assert a.noise is False and a.outdir == 'o' and a.ckpt == 'p'
    assert (
        _apps.parse(invert.command(), ['--ckpt', 'p', '--images', 'x', '--outdir', 'o', '--noise'], invert.MULTI).noise
        is True
    )
    assert (
        _apps.parse(invert.command(), ['--ckpt', 'p', '--images', 'x', '--outdir', 'o'], invert.MULTI).noise is None
    )  # the preset decides
    a = _apps.parse(
        morph.command(),
        ['--parent', 'p', '--source', 's1', 's2', '--target', 't1', 't2', '--child', 'c', '--outdir', 'o'],
        morph.MULTI,
    )
    assert a.source == ['s1', 's2'] and a.target == ['t1', 't2'] and a.child == 'c'
    # a bare argument after a single-value flag is not taken as more values: exit 2, one line
    line = _exits(invert.main, ['--ckpt', 'p', '--outdir', 'o', 'extra', '--images', 'x'], capsys, code=2)
    assert line.startswith('error: extra: unexpected argument')
    line = _exits(invert.main, ['--images', 'x', '--outdir', 'o'], capsys, code=2)
    assert line.startswith('error: --ckpt is required')


def test_old_cli_spellings_still_run(tmp_path):
    """python -m alignjax.generate / .apps.morphing / .apps.swapping and python invert.py run the new mains."""
    env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='')
    for cmd, prog in (
        [['-m', 'alignjax.generate'], 'generate'],
        [[str(ROOT / 'invert.py')], 'invert'],
        [['-m', 'alignjax.apps.morphing'], 'morph'],
        [['-m', 'alignjax.apps.swapping'], 'layer-swap'],
    ):
        p = subprocess.run(
            [sys.executable, *cmd, '--help'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert p.returncode == 0 and p.stdout.startswith(f'usage: alignjax-{prog} '), p.stderr[-2000:]
    from alignjax.cli.invert import main as new_main
    from alignjax.invert.cli import main

    assert main is new_main


# ----------------------------------------------------------------------------------------------------------
# generate and export (items 2, 5, 7).


def test_generate_flags_and_seed_errors(ckpts, tmp_path, capsys):
    from alignjax.cli.generate import main

    for bad in ('abc', '5-2', ''):
        assert _exits(
            main, ['--ckpt', ckpts['parent'], '--seeds', bad, '--out', str(tmp_path / 'g.png')], capsys
        ).startswith(f'error: --seeds {bad!r}')
    assert main(['--ckpt', ckpts['parent'], '--psi', '0.5', '--outdir', str(tmp_path / 'g')]) == 0
    assert Image.open(tmp_path / 'g' / 'grid.png').size == (3 * 16, 3 * 16)  # 8 seeds (0-7)
    assert sorted(p.name for p in (tmp_path / 'g').glob('seed*.png'))[-1] == 'seed0007.png'
    capsys.readouterr()
    argv = ['--ckpt', ckpts['parent'], '--seeds', '0-1', '--trunc', '0.5', '--out', str(tmp_path / 'h.png')]
    assert main(argv) == 0
    assert 'warning: --trunc is deprecated, use --psi' in capsys.readouterr().err
    np.testing.assert_allclose(
        np.asarray(Image.open(tmp_path / 'h.png'))[:, :16],  # same seed, same psi
        np.asarray(Image.open(tmp_path / 'g' / 'seed0000.png')),
        atol=1,
    )


def _folder_with_bad(tmp_path):
    d = tmp_path / 'imgs'
    d.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        Image.fromarray(rng.randint(0, 255, (20, 20, 3), np.uint8)).save(d / f'{i}.png')
    (d / '1b.png').write_bytes(b'')
    return d


def test_export_errors_skip_progress_and_aliases(tmp_path, capsys):
    from alignjax.cli.export_data import main

    d = _folder_with_bad(tmp_path)
    out = tmp_path / 'o.zip'
    line = _exits(main, ['--source', f'folder:{d}', '--out', str(out)], capsys)
    assert line.startswith(f"error: bad image file '{d / '1b.png'}': zero-byte file") and '--skip-bad' in line
    assert not out.exists() and list(tmp_path.glob('.o.zip*')) == []  # nothing half-written
    assert main(['--source', f'folder:{d}', '--out', str(out), '--resolution', '8', '--skip-bad']) == 0
    err = capsys.readouterr().err
    assert '3/3\n' in err and '\nwrote 3 images (8x8)' in err and '1 bad file(s) skipped' in err
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == [
            '00000/img00000000.png',
            '00000/img00000001.png',
            '00000/img00000002.png',
            'dataset.json',
        ]
    assert main(['--source', 'proc:faces', '--n', '2', '--res', '8', '--out', str(out)]) == 0
    err = capsys.readouterr().err
    assert 'warning: --n is deprecated, use --max-images' in err and 'wrote 2 images (8x8)' in err
    none = tmp_path / 'none'
    for spec, want in [
        ('proc:faces?n=abc', "error: option n='abc' of dataset 'proc:faces?n=abc' is not an integer"),
        (f'folder:{d / "0.png"}', f"error: dataset folder '{d / '0.png'}' is a file, not a folder"),
        (f'folder:{none}', f"error: dataset folder '{none}' does not exist"),
    ]:
        assert _exits(main, ['--source', spec, '--out', str(out)], capsys) == want
    (tmp_path / 'empty').mkdir()
    line = _exits(main, ['--source', f'folder:{tmp_path / "empty"}', '--out', str(out)], capsys)
    assert 'no images found' in line and '.png' in line and '.pdf' not in line and '.h5' not in line


def test_cli_processes_print_one_error_line(tmp_path, monkeypatch):
    """The real entry points: exit 1 and one `error:` line, no traceback; ALIGNJAX_DEBUG=1 / --debug show it."""
    env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='')
    env.pop('ALIGNJAX_DEBUG', None)
    for cmd in (
        [sys.executable, '-m', 'alignjax.generate', '--ckpt', 'x.pkl', '--seeds', 'abc'],
        [sys.executable, '-m', 'alignjax.data.export', '--source', 'proc:nope', '--out', 'a.zip'],
    ):
        p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith('error:')]
        assert p.returncode == 1 and len(errors) == 1 and 'Traceback' not in p.stderr, p.stderr
    from alignjax.cli.export_data import main

    argv = ['--source', 'proc:nope', '--out', str(tmp_path / 'a.zip')]
    with pytest.raises(ValueError, match='unknown procedural domain'):
        main(argv + ['--debug'])
    monkeypatch.setenv('ALIGNJAX_DEBUG', '1')
    with pytest.raises(ValueError, match='unknown procedural domain'):
        main(argv)


# ----------------------------------------------------------------------------------------------------------
# folder: datasets with symlink loops (issue 15 item 6) and the extension list.


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds):
    def on_alarm(*_):
        raise _Hang(f'still listing after {seconds}s')

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_symlink_loops_are_followed_once(tmp_path, capfd):
    from alignjax.data import make_dataset
    from alignjax.data._image import IMAGE_EXTENSIONS
    from alignjax.invert.images import list_image_files

    root = tmp_path / 'ds'
    (root / 'a' / 'b').mkdir(parents=True)
    (tmp_path / 'linked').mkdir()
    rng = np.random.RandomState(0)
    for p in (root / 'x.png', root / 'a' / 'y.png', root / 'a' / 'b' / 'z.png', tmp_path / 'linked' / 'w.png'):
        Image.fromarray(rng.randint(0, 255, (8, 8, 3), np.uint8)).save(p)
    os.symlink('..', root / 'a' / 'b' / 'up')  # loops: two ways back up, 2^depth paths if followed
    os.symlink('../..', root / 'a' / 'b' / 'top')
    os.symlink('.', root / 'a' / 'self')
    os.symlink(tmp_path / 'linked', root / 'more')  # a real link to another folder: followed
    with _deadline(30):
        ds = make_dataset(f'folder:{root}', 8)
        files = list_image_files(root)
    assert len(ds) == 4 and sorted(ds.describe(i).split('/ds/')[1] for i in range(4)) == [
        'a/b/z.png',
        'a/y.png',
        'more/w.png',
        'x.png',
    ]
    assert sorted(str(f.relative_to(root)) for f in files) == ['a/b/z.png', 'a/y.png', 'more/w.png', 'x.png']
    assert 'symlink loop' in capfd.readouterr().err
    assert '.pdf' not in IMAGE_EXTENSIONS and '.h5' not in IMAGE_EXTENSIONS and '.png' in IMAGE_EXTENSIONS
