"""Every StyleGAN2 architecture NVlabs ships (G and D 'orig' | 'skip' | 'resnet'): loaded from NVlabs pickles,
checked against NVlabs' own outputs and gradients (tests/data/arch/*.npz, written by tests/make_arch_reference.py
from stylegan2-ada-pytorch `training/networks.py`), trained, morphed; and per-network loading (a file whose D
cannot be built still gives its generators)."""
import json
import pathlib
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import write_nvlabs_pickle
from test_conformance import assert_grad_close, nchw, nhwc

import alignjax as aj
from alignjax.errors import CheckpointError
from alignjax.nn import layers as NL
from alignjax.nn import networks

DATA = pathlib.Path(__file__).resolve().parent / 'data' / 'arch'
COMBOS = sorted(p.stem for p in DATA.glob('*.npz'))
TOL = 1e-4


def test_every_architecture_has_reference_numbers():
    gs = {c.split('_')[0] for c in COMBOS}
    ds = {c.split('_')[1] for c in COMBOS}
    assert len(COMBOS) == 6 and gs == ds == {'orig', 'skip', 'resnet'}, COMBOS
    assert sum(p.stat().st_size for p in DATA.glob('*.npz')) < 1.5e6


_REFS: dict = {}


def ref(combo):
    if combo not in _REFS:
        _REFS[combo] = dict(np.load(DATA / f'{combo}.npz'))
    return _REFS[combo]


def nets_of(r, names=('G', 'G_ema', 'D')):
    """{name: (NVlabs state dict, init kwargs)} of a reference file (its G serves as G and G_ema)."""
    out = {}
    for name in names:
        net = 'D' if name == 'D' else 'G'
        sd = {k[len(net) + 1:]: v for k, v in r.items() if k.startswith(net + '.')}
        out[name] = (sd, json.loads(str(r[f'{net}_kwargs'])))
    return out


_CKS: dict = {}


@pytest.fixture
def ck(request, tmp_path_factory):
    combo = request.param
    if combo not in _CKS:
        mp = pytest.MonkeyPatch()
        try:
            path = write_nvlabs_pickle(tmp_path_factory.mktemp('arch') / f'{combo}.pkl', nets_of(ref(combo)), mp)
            _CKS[combo] = aj.load_checkpoint(path)
        finally:
            mp.undo()
    return _CKS[combo], ref(combo)


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max())


def c_of(r):
    return jnp.asarray(r['c']) if r['c'].shape[1] else None


@pytest.mark.parametrize('ck', COMBOS, indirect=True)
def test_architecture_inferred(ck):
    ck, r = ck
    g_arch, d_arch = (json.loads(str(r['G_kwargs']))['synthesis_kwargs']['architecture'],
                      json.loads(str(r['D_kwargs']))['architecture'])
    assert (ck.g_config.architecture, ck.d_config.architecture) == (g_arch, d_arch)
    assert ck.g_config.resolution == 16 and ck.g_config.channels == {4: 16, 8: 16, 16: 8}
    assert ck.g_config.conv_clamp == json.loads(str(r['G_kwargs']))['synthesis_kwargs']['conv_clamp']
    assert not [n for n in ck.notes if 'outside the StyleGAN2 schema' in n], ck.notes


@pytest.mark.parametrize('ck', COMBOS, indirect=True)
def test_outputs_match_nvlabs(ck):
    ck, r = ck
    gen, d, c = ck.generator(), ck.discriminator(), c_of(r)
    errs = {'ws': rel_err(gen.mapping(r['z'], c), r['ws']),
            'img_const': rel_err(nchw(gen.synthesis(r['ws'], noise_mode='const')), r['img_const']),
            'img_none': rel_err(nchw(gen.synthesis(r['ws'], noise_mode='none')), r['img_none']),
            'logits': rel_err(d(nhwc(r['d_input']), c), r['logits']),
            'logits_gen': rel_err(d(nhwc(r['img_const']), c), r['logits_gen'])}
    assert max(errs.values()) <= TOL, errs


@pytest.mark.parametrize('ck', COMBOS, indirect=True)
def test_r1_gradient_matches_nvlabs(ck, monkeypatch):
    ck, r = ck
    d, c = ck.discriminator(), c_of(r)
    x = nhwc(r['d_input'])
    grad = lambda: nchw(jax.grad(lambda v: d.module.apply(d.variables, v, c).sum())(x))
    assert_grad_close(grad, r['grad_r1'], 'R1 grad', monkeypatch, [networks, NL])


@pytest.mark.parametrize('ck', COMBOS, indirect=True)
def test_path_length_gradient_matches_nvlabs(ck, monkeypatch):
    ck, r = ck
    gen = ck.generator()
    pl = nhwc(r['pl_noise'])
    grad = lambda: jax.grad(lambda w: (gen.module.apply(gen.variables, w, method='synthesize') * pl).sum())(
        jnp.asarray(r['ws']))
    assert_grad_close(grad, r['grad_pl'], 'PL grad', monkeypatch, [NL])
