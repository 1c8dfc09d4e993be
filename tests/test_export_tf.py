"""Export to the NVlabs TensorFlow pickle layout (G, D, Gs): round trip through our loader, no code in the file
(its globals are exactly the allow-listed stand-ins), NVlabs' own legacy.py conversion where the reference is
available, `Checkpoint.export` format inference and the `alignjax-export` CLI between every pair of formats."""

import dataclasses
import os
import pickletools
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import (
    CLAMP_FIXTURES,
    COND_FIXTURES,
    FIXTURES,
    FIXTURES_ROOT,
    SHARED,
    require,
)

import alignjax as aj
from alignjax.errors import CheckpointError, InputError
from alignjax.eval.zoo import zoo_path
from alignjax.io.formats.tf import TF_GLOBALS
from alignjax.io.formats.tf_export import TF_PICKLE_GLOBALS

SETS = {'stylegan2_32': FIXTURES, 'clamp_32': CLAMP_FIXTURES, 'cond_c10_dmap0_32': COND_FIXTURES}


def _leaves(variables):
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(variables)}


def assert_same_checkpoint(a, b):
    assert a.g_config == b.g_config
    assert a.d_config == b.d_config
    assert sorted(a.nets) == sorted(b.nets)
    for name in a.nets:
        la, lb = _leaves(a.nets[name]), _leaves(b.nets[name])
        assert la.keys() == lb.keys(), name
        for k in la:
            assert la[k].shape == lb[k].shape and la[k].dtype == lb[k].dtype, (name, k)
            np.testing.assert_array_equal(la[k], lb[k], err_msg=f'{name} {k}')


def pickle_globals(path):
    out, ops = set(), []
    for op, arg, _ in pickletools.genops(Path(path).read_bytes()):
        ops.append(op.name)
        if op.name == 'GLOBAL':
            out.add(tuple(arg.split(' ', 1)))
        elif op.name in ('STACK_GLOBAL', 'INST', 'OBJ', 'EXT1', 'EXT2', 'EXT4', 'PERSID', 'BINPERSID'):
            out.add((op.name, ''))
    return out, ops


@pytest.mark.parametrize('name', sorted(SETS))
def test_tf_export_round_trips_bit_exactly(name, tmp_path):
    src = require(SETS[name] / 'nvlabs.pkl')
    ck = aj.load_checkpoint(src)
    out = tmp_path / 'model.pkl'
    assert ck.export(out) == []
    back = aj.load_checkpoint(out)
    assert back.format == 'tf'
    assert_same_checkpoint(ck, back)
    # and the same numbers as the fixture's own TF pickle (made by NVlabs' layout, verified with legacy.py)
    assert_same_checkpoint(aj.load_checkpoint(require(SETS[name] / 'tf.pkl')), back)


def test_tf_export_identical_outputs(tmp_path, reference):
    ck = aj.load_checkpoint(require(FIXTURES / 'nvlabs.pkl'))
    ck.export(tmp_path / 'm.pkl', format='tf')
    back = aj.load_checkpoint(tmp_path / 'm.pkl')
    z = reference['z']
    for which in ('G_ema', 'G'):
        g0, g1 = ck.generator(which), back.generator(which)
        i0 = np.asarray(g0.synthesis(g0.mapping(z), noise_mode='const'))
        i1 = np.asarray(g1.synthesis(g1.mapping(z), noise_mode='const'))
        np.testing.assert_array_equal(i0, i1)
    x = np.transpose(reference['d_input'], (0, 2, 3, 1))
    np.testing.assert_array_equal(np.asarray(ck.discriminator()(x)), np.asarray(back.discriminator()(x)))


def test_tf_export_holds_no_code(tmp_path):
    ck = aj.load_checkpoint(require(COND_FIXTURES / 'nvlabs.pkl'))
    out = tmp_path / 'm.pkl'
    ck.export(out)
    found, ops = pickle_globals(out)
    assert found == set(TF_PICKLE_GLOBALS)  # exactly these names, nothing else
    assert found <= set(TF_GLOBALS)  # ... each an allow-listed stand-in of our loader
    assert ops[0] == 'PROTO' and ops[-1] == 'STOP'
    # the file is the tuple (G, D, Gs) of Network states holding only numbers and plain containers
    from alignjax.io.safe_pickle import load_pickle

    nets = load_pickle(out, TF_GLOBALS)
    assert [n.name for n in nets] == ['G', 'D', 'Gs']

    def plain(x, depth=0):
        assert depth < 8
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v, depth + 1) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return all(plain(v, depth + 1) for v in x)
        if type(x).__name__ == 'TFNetwork':
            return plain(x.state, depth + 1)
        return isinstance(x, (str, int, float, bool, type(None), np.ndarray))

    assert all(plain(n) for n in nets)
    assert all('import' not in n.state['build_module_src'] for n in nets)


def test_export_format_from_suffix(tmp_path):
    ck = aj.load_checkpoint(require(FIXTURES / 'nvlabs.pkl'))
    ck.export(tmp_path / 'a.pt')
    assert aj.load_checkpoint(tmp_path / 'a.pt').format == 'rosinality'
    ck.export(tmp_path / 'b.pkl')
    assert aj.load_checkpoint(tmp_path / 'b.pkl').format == 'tf'
    ck.export(tmp_path / 'c')
    assert aj.load_checkpoint(tmp_path / 'c').format == 'orbax'
    ck.export(tmp_path / 'd.bin', format='pt')
    assert aj.load_checkpoint(tmp_path / 'd.bin').format == 'rosinality'
    with pytest.raises(InputError, match='without code'):
        ck.export(tmp_path / 'e.pkl', format='nvlabs')
    with pytest.raises(InputError, match='cannot tell the format'):
        ck.export(tmp_path / 'e.bin')
    with pytest.raises(InputError, match='not a format'):
        ck.export(tmp_path / 'e.pkl', format='onnx')


def test_tf_export_needs_d(tmp_path):
    ck = aj.load_checkpoint(require(FIXTURES / 'nvlabs.pkl'))
    g_only = aj.Checkpoint(ck.g_config, None, {'G_ema': ck.nets['G_ema']})
    with pytest.raises(CheckpointError, match='needs a discriminator'):
        g_only.export(tmp_path / 'x.pkl')
    assert not (tmp_path / 'x.pkl').exists()


# ------------------------------------------------------------------------------------------------------------
# NVlabs' own conversion (stylegan2-ada-pytorch legacy.py), only where the reference code and torch are here.


def _nvlabs_repo():
    for cand in (
        os.environ.get('ALIGNJAX_NVLABS_REPO', ''),
        SHARED / 'stylegan2-ada-pytorch',
        FIXTURES_ROOT.parent / 'stylegan2-ada-pytorch',
    ):
        if cand and (Path(cand) / 'legacy.py').exists() and (Path(cand) / 'training' / 'networks.py').exists():
            return Path(cand)
    return None


LEGACY_SCRIPT = textwrap.dedent("""
    import sys, types, numpy as np
    repo, pkl, fx = sys.argv[1:4]
    try:
        import click  # noqa: F401  (legacy.py's command line only)
    except ImportError:
        c = types.ModuleType('click'); c.command = c.option = lambda *a, **k: (lambda f: f); sys.modules['click'] = c
    sys.path.insert(0, repo)
    import torch, legacy
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    ref = np.load(fx + '/reference.npz')
    c = torch.from_numpy(ref['c']) if 'c' in ref.files else None
    for name, key in (('G_ema', 'G_ema.img_const'), ('G', 'G.img_const')):
        G = data[name]
        img = G.synthesis(G.mapping(torch.from_numpy(ref['z']), c), noise_mode='const').detach().numpy()
        print(name, float(np.abs(img - ref[key]).max()))
    print('D', float(np.abs(data['D'](torch.from_numpy(ref['d_input']), c).detach().numpy() - ref['D.logits']).max()))
""")


@pytest.mark.torch
@pytest.mark.parametrize('name', ['stylegan2_32', 'cond_c10_dmap0_32'])
def test_nvlabs_legacy_converts_our_export(name, tmp_path):
    repo = _nvlabs_repo()
    if repo is None:
        pytest.skip('NVlabs stylegan2-ada-pytorch (legacy.py) not found: set ALIGNJAX_NVLABS_REPO to a checkout')
    pytest.importorskip('torch')
    fx = require(SETS[name])
    out = tmp_path / 'm.pkl'
    aj.load_checkpoint(fx / 'nvlabs.pkl').export(out)
    script = tmp_path / 'check.py'
    script.write_text(LEGACY_SCRIPT)
    r = subprocess.run(
        [sys.executable, str(script), str(repo), str(out), str(fx)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    diffs = {k: float(v) for k, v in (line.split() for line in r.stdout.strip().splitlines())}
    assert set(diffs) == {'G_ema', 'G', 'D'}
    assert max(diffs.values()) < 2e-5, diffs  # NVlabs' own networks reproduce the reference outputs


# ------------------------------------------------------------------------------------------------------------
# alignjax-export between every pair of formats

READ = {'nvlabs': 'nvlabs.pkl', 'rosinality': 'rosinality.pt', 'tf': 'tf.pkl', 'orbax': None}
WRITE = {'rosinality': 'out.pt', 'tf': 'out.pkl', 'orbax': 'outdir'}


@pytest.fixture(scope='module')
def orbax_src(tmp_path_factory):
    d = tmp_path_factory.mktemp('orbax') / 'model'
    aj.load_checkpoint(require(FIXTURES / 'nvlabs.pkl')).save(d)
    return d


@pytest.mark.parametrize('src_fmt', sorted(READ))
@pytest.mark.parametrize('dst_fmt', sorted(WRITE))
def test_cli_export_every_pair(src_fmt, dst_fmt, tmp_path, orbax_src, capsys):
    from alignjax.cli.export import main

    src = orbax_src if READ[src_fmt] is None else require(FIXTURES / READ[src_fmt])
    dst = tmp_path / WRITE[dst_fmt]
    assert main([str(src), str(dst)]) == 0
    assert f'wrote {dst} ({dst_fmt};' in capsys.readouterr().out
    a, b = aj.load_checkpoint(src), aj.load_checkpoint(dst)
    assert b.format == dst_fmt
    for name in a.nets:  # every network the source has, with the same numbers
        la, lb = _leaves(a.nets[name]), _leaves(b.nets[name])
        for k in la:
            np.testing.assert_allclose(la[k], lb[k], rtol=0, atol=0, err_msg=f'{src_fmt}->{dst_fmt} {name} {k}')


def test_cli_export_errors(tmp_path, capsys):
    from alignjax.cli.export import main

    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / 'missing.pkl'), str(tmp_path / 'x.pt')])
    assert e.value.code == 1
    assert 'error: checkpoint not found' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / 'only-one.pkl')])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(['--help'])
    assert e.value.code == 0
    assert '--format' in capsys.readouterr().out


def test_tf_export_round_trips_a_model_trained_here(tmp_path):
    """A zoo child's affine biases are arbitrary float32s (the fixtures' happen to survive b - 1 + 1 in float32;
    the toons child's did not: 3e-8 off): the exported file brings every weight back bit-exactly."""
    src = aj.load_checkpoint(zoo_path('toons'))
    # the run's Impl (how ops are computed, wgrad='gemm' then) is not part of any file format
    src = dataclasses.replace(
        src,
        g_config=dataclasses.replace(src.g_config, impl=aj.nn.Impl()),
        d_config=dataclasses.replace(src.d_config, impl=aj.nn.Impl()),
    )
    out = tmp_path / 'toons.pkl'
    src.export(out)
    back = aj.load_checkpoint(out)
    assert back.format == 'tf'
    assert_same_checkpoint(src, back)
