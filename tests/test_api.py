"""Public API: store round trip, export to rosinality (read back by torch), noise modes, random init, CLI,
w_avg computation, clear errors."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alignjax as aj
from alignjax.io.safe_pickle import CheckpointError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def ck(fixtures_dir):
    return aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl')


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_store_round_trip_and_atomic_overwrite(ck, tmp_path, reference):
    ck.save(tmp_path / 'm')
    back = aj.load_checkpoint(tmp_path / 'm')
    assert back.format == 'orbax' and back.g_config == ck.g_config and back.d_config == ck.d_config
    for k in ('G', 'G_ema', 'D'):
        assert leaves_equal(back.nets[k], ck.nets[k]), k
    img = back.generator().synthesis(jnp.asarray(reference['G_ema.ws']))
    np.testing.assert_allclose(np.transpose(np.asarray(img), (0, 3, 1, 2)), reference['G_ema.img_const'], atol=1e-4)
    ck.save(tmp_path / 'm')  # overwrite in place: no temporary directories left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m']


def test_export_rosinality_round_trip(ck, tmp_path):
    ck.export_rosinality(tmp_path / 'out.pt')
    back = aj.load_checkpoint(tmp_path / 'out.pt')
    for k in ('G', 'G_ema', 'D'):
        for a, b in zip(jax.tree_util.tree_leaves(ck.nets[k]), jax.tree_util.tree_leaves(back.nets[k])):
            np.testing.assert_allclose(a, b, atol=1e-7)


@pytest.mark.torch
def test_export_loads_in_torch_weights_only(ck, tmp_path, fixtures_dir):
    torch = pytest.importorskip('torch')
    ck.export_rosinality(tmp_path / 'out.pt')
    ours = torch.load(tmp_path / 'out.pt', weights_only=True)
    theirs = torch.load(fixtures_dir / 'rosinality.pt', weights_only=False)
    for k in ('g_ema', 'g', 'd'):
        assert list(ours[k]) == list(theirs[k])
        for name in theirs[k]:
            assert ours[k][name].shape == theirs[k][name].shape, name
            assert torch.allclose(ours[k][name].float(), theirs[k][name].float(), atol=1e-6), name
    assert torch.allclose(ours['latent_avg'], theirs['latent_avg'], atol=1e-6)


def test_noise_modes(ck, reference):
    gen = ck.generator()
    ws = jnp.asarray(reference['G_ema.ws'])
    k = jax.random.key(0)
    a = gen.synthesis(ws, 'random', key=k)
    b = gen.synthesis(ws, 'random', key=k)
    c = gen.synthesis(ws, 'random', key=jax.random.key(1))
    assert np.array_equal(np.asarray(a), np.asarray(b)) and not np.allclose(np.asarray(a), np.asarray(c))
    with pytest.raises(ValueError, match='key'):
        gen.synthesis(ws, 'random')
    # explicit noise equal to the stored constants reproduces 'const'; zero noise reproduces 'none'
    consts = {
        name: gen.variables['buffers']['synthesis'][f'b{name.split(".")[0][1:]}'][name.split('.')[1]]['noise_const']
        for name in gen.noise_shapes
    }
    np.testing.assert_allclose(np.asarray(gen.synthesis(ws, noise=consts)), np.asarray(gen.synthesis(ws)), atol=1e-5)
    zeros = {name: jnp.zeros(s) for name, s in gen.noise_shapes.items()}
    np.testing.assert_allclose(
        np.asarray(gen.synthesis(ws, 'const', noise=zeros)), np.asarray(gen.synthesis(ws, 'none')), atol=1e-5
    )
    with pytest.raises(ValueError, match='b8.conv0'):
        gen.synthesis(ws, noise={'b8.conv0': jnp.zeros((4, 4))})


def test_random_layers_get_distinct_noise():
    """'random' draws each layer's noise from its own fold of the key: no two same-size layers share it."""
    from alignjax.nn import networks as N

    cfg = aj.GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)
    gen = aj.new_generator(jax.random.key(0), config=cfg)
    captured = {}

    def grab(self, n, mode, noise, key, specs):
        out = orig(self, n, mode, noise, key, specs)
        captured.update(out)
        return out

    orig = N.SynthesisNetwork._noises
    N.SynthesisNetwork._noises = grab
    try:
        gen.module.apply(
            gen.variables, jnp.zeros((2, cfg.num_ws, 8)), 'random', None, jax.random.key(3), method='synthesize'
        )
    finally:
        N.SynthesisNetwork._noises = orig
    assert not np.allclose(np.asarray(captured['b8.conv0']), np.asarray(captured['b8.conv1']))


def test_new_generator_and_jit_friendly():
    gen = aj.new_generator(
        jax.random.key(0), resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16
    )
    assert gen.num_ws == 6 and gen.config.channels == {4: 16, 8: 16, 16: 8}
    f = jax.jit(lambda g, z: g.synthesis(g.mapping(z, truncation_psi=0.7)))
    img = f(gen, jnp.ones((2, 16)))
    assert img.shape == (2, 16, 16, 3) and img.dtype == jnp.float32
    with pytest.raises(ValueError, match=r'z must be \[N, 16\]'):
        gen.mapping(jnp.ones((2, 15)))
    with pytest.raises(ValueError, match='ws must be'):
        gen.synthesis(jnp.ones((2, 5, 16)))
    d = aj.new_discriminator(jax.random.key(1), resolution=16, channel_base=128, channel_max=16)
    with pytest.raises(ValueError, match='NHWC'):
        d(jnp.ones((4, 3, 16, 16)))


def test_w_avg_computed_when_absent(fixtures_dir, tmp_path):
    from alignjax.io.torch_file import load_torch, save_torch

    obj = load_torch(fixtures_dir / 'rosinality.pt')
    obj = {'g_ema': obj['g_ema']}  # no latent_avg, no g, no d
    save_torch(obj, tmp_path / 'no_avg.pt')
    ck = aj.load_checkpoint(tmp_path / 'no_avg.pt')
    assert any('10,000' in n for n in ck.notes)
    ref = aj.load_checkpoint(fixtures_dir / 'rosinality.pt').generator().w_avg
    got = ck.generator().w_avg
    assert got.shape == ref.shape
    # the fixture's w_avg is random; ours is the true mean of mapped z: check it is that mean
    z = jax.random.normal(jax.random.key(5), (2000, 64))
    mean = np.asarray(ck.generator().mapping(z)[:, 0]).mean(0)
    assert np.abs(np.asarray(got) - mean).max() < 0.05 * np.abs(mean).max() + 1e-3
    with pytest.raises(KeyError, match='no discriminator'):
        ck.discriminator()
    with pytest.raises(aj.AlignjaxError) as e:  # (also a KeyError; its text unquoted, for one error line)
        ck.generator('G')
    assert str(e.value).endswith("no generator 'G' in this checkpoint (has ['G_ema'])")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        aj.load_checkpoint(tmp_path / 'nope.pkl')
    bad = tmp_path / 'junk.pkl'
    bad.write_bytes(b'this is not a checkpoint')
    with pytest.raises(CheckpointError, match='junk.pkl'):
        aj.load_checkpoint(bad)


def test_generate_cli(fixtures_dir, tmp_path):
    out = tmp_path / 'grid.png'
    p = subprocess.run(
        [
            sys.executable,
            '-m',
            'alignjax.generate',
            '--ckpt',
            str(fixtures_dir / 'tf.pkl'),
            '--seeds',
            '0-5',
            '--trunc',
            '0.7',
            '--out',
            str(out),
            '--cols',
            '3',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, XLA_FLAGS='', JAX_PLATFORMS='cpu'),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    from PIL import Image

    assert Image.open(out).size == (3 * 32, 2 * 32)
    p = subprocess.run(
        [sys.executable, '-m', 'alignjax.generate', '--ckpt', str(tmp_path / 'missing.pkl')],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode != 0 and 'missing.pkl' in p.stderr and 'Traceback' not in p.stderr


def _flat_shapes(tree, prefix=''):
    out = {}
    for k, v in tree.items():
        key = f'{prefix}.{k}' if prefix else k
        out.update(_flat_shapes(v, key) if isinstance(v, dict) else {key: tuple(v.shape)})
    return out


@pytest.mark.parametrize('c_dim,d_mapping', [(0, 8), (3, 0), (3, 2)])
def test_architecture_table_is_what_the_modules_build(c_dim, d_mapping):
    """The NVlabs schema and our variable shapes come from `alignjax.nn.arch`; the flax modules build exactly
    those variables (checked by tracing their init)."""
    from alignjax.io import convert
    from alignjax.model import _init_discriminator, _init_generator

    g = aj.GeneratorConfig(
        resolution=16, z_dim=8, w_dim=8, c_dim=c_dim, channel_base=128, channel_max=16, mapping_layers=2
    )
    d = aj.DiscriminatorConfig(resolution=16, c_dim=c_dim, channel_base=128, channel_max=16, mapping_layers=d_mapping)
    for cfg, init in ((g, _init_generator), (d, _init_discriminator)):
        traced = jax.eval_shape(init, cfg, jax.random.key(0))
        assert {col: _flat_shapes(dict(v)) for col, v in traced.items()} == convert.variable_shapes(cfg), cfg


def test_training_snapshot_loads(tmp_path):
    """`load_checkpoint('runs/x/checkpoints/<step>')` reads G, G_ema and D of a training snapshot, saved the way
    alignjax.train.loop saves it (orbax CheckpointManager items state / data / meta)."""
    import optax
    import orbax.checkpoint as ocp

    from alignjax.train import step as S

    g = aj.new_generator(
        jax.random.key(0), resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=16, mapping_layers=2
    )
    d = aj.new_discriminator(jax.random.key(1), resolution=16, channel_base=128, channel_max=16)
    ema = jax.tree_util.tree_map(lambda a: a * 0.5, g.variables)
    state = S.init_state(jax.random.key(2), g.variables, d.variables, ema, optax.adam(1e-3), optax.adam(1e-3))
    meta = {
        'config': {},
        'g_config': g.config.to_dict(),
        'd_config': d.config.to_dict(),
        'dataset': 'x',
        'resolution': 16,
    }
    opts = ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False)
    items = ('state', 'data', 'meta')
    with ocp.CheckpointManager(tmp_path / 'checkpoints', options=opts, item_names=items) as mgr:
        mgr.save(
            7,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=ocp.args.JsonSave({'iterator': ''}),
                meta=ocp.args.JsonSave(meta),
            ),
        )
    ck = aj.load_checkpoint(tmp_path / 'checkpoints' / '7')
    assert ck.format == 'snapshot' and sorted(ck.nets) == ['D', 'G', 'G_ema'] and ck.extra['step'] == 0
    assert ck.g_config == g.config and ck.d_config == d.config
    assert leaves_equal(ck.nets['G'], g.variables) and leaves_equal(ck.nets['G_ema'], ema)
    assert leaves_equal(ck.nets['D'], d.variables)
    z = np.random.RandomState(0).randn(2, 8)
    np.testing.assert_array_equal(np.asarray(ck.generator('G')(z)), np.asarray(g(z)))
    with pytest.raises(CheckpointError, match='training snapshot'):
        aj.load_checkpoint(tmp_path / 'checkpoints')  # the manager's folder, not a step
