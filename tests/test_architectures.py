"""Every StyleGAN2 architecture NVlabs ships (G and D 'orig' | 'skip' | 'resnet'): loaded from NVlabs pickles,
checked against NVlabs' own outputs and gradients (tests/data/arch/*.npz, written by tests/make_arch_reference.py
from stylegan2-ada-pytorch `training/networks.py`), trained, morphed; and per-network loading (a file whose D
cannot be built still gives its generators)."""

import json
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import child_of, write_nvlabs_pickle, write_tf_pickle
from test_conformance import assert_grad_close, nchw, nhwc
from test_export_tf import _nvlabs_repo

import alignjax as aj
from alignjax.errors import CheckpointError
from alignjax.io import convert
from alignjax.nn import layers as NL
from alignjax.nn import networks

DATA = pathlib.Path(__file__).resolve().parent / 'data' / 'arch'
COMBOS = sorted(p.stem for p in DATA.glob('*.npz') if not p.stem.startswith('opt_'))
# NVlabs options beyond the architecture (make_arch_reference.OPTIONS): mapping layer_features != w_dim,
# use_noise=False, resample filters [1,2,1] and [1,1]
OPTIONS = sorted(p.stem for p in DATA.glob('opt_*.npz'))
EVERY = COMBOS + OPTIONS
TOL = 1e-4


def test_every_architecture_has_reference_numbers():
    gs = {c.split('_')[0] for c in COMBOS}
    ds = {c.split('_')[1] for c in COMBOS}
    assert len(COMBOS) == 6 and gs == ds == {'orig', 'skip', 'resnet'}, COMBOS
    assert OPTIONS == ['opt_filter11', 'opt_filter121', 'opt_layer_features', 'opt_no_noise'], OPTIONS
    assert sum(p.stat().st_size for p in DATA.glob('*.npz')) < 2.5e6


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
        sd = {k[len(net) + 1 :]: v for k, v in r.items() if k.startswith(net + '.')}
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
    g_arch, d_arch = (
        json.loads(str(r['G_kwargs']))['synthesis_kwargs']['architecture'],
        json.loads(str(r['D_kwargs']))['architecture'],
    )
    assert (ck.g_config.architecture, ck.d_config.architecture) == (g_arch, d_arch)
    assert ck.g_config.resolution == 16 and ck.g_config.channels == {4: 16, 8: 16, 16: 8}
    assert ck.g_config.conv_clamp == json.loads(str(r['G_kwargs']))['synthesis_kwargs']['conv_clamp']
    assert not [n for n in ck.notes if 'outside the StyleGAN2 schema' in n], ck.notes


@pytest.mark.parametrize('ck', EVERY, indirect=True)
def test_outputs_match_nvlabs(ck):
    ck, r = ck
    gen, d, c = ck.generator(), ck.discriminator(), c_of(r)
    errs = {
        'ws': rel_err(gen.mapping(r['z'], c), r['ws']),
        'img_const': rel_err(nchw(gen.synthesis(r['ws'], noise_mode='const')), r['img_const']),
        'img_none': rel_err(nchw(gen.synthesis(r['ws'], noise_mode='none')), r['img_none']),
        'logits': rel_err(d(nhwc(r['d_input']), c), r['logits']),
        'logits_gen': rel_err(d(nhwc(r['img_const']), c), r['logits_gen']),
    }
    assert max(errs.values()) <= TOL, errs


@pytest.mark.parametrize('ck', EVERY, indirect=True)
def test_r1_gradient_matches_nvlabs(ck, monkeypatch):
    ck, r = ck
    d, c = ck.discriminator(), c_of(r)
    x = nhwc(r['d_input'])
    grad = lambda: nchw(jax.grad(lambda v: d.module.apply(d.variables, v, c).sum())(x))
    assert_grad_close(grad, r['grad_r1'], 'R1 grad', monkeypatch, [networks, NL])


@pytest.mark.parametrize('ck', EVERY, indirect=True)
def test_path_length_gradient_matches_nvlabs(ck, monkeypatch):
    ck, r = ck
    gen = ck.generator()
    pl = nhwc(r['pl_noise'])
    grad = lambda: jax.grad(lambda w: (gen.module.apply(gen.variables, w, method='synthesize') * pl).sum())(
        jnp.asarray(r['ws'])
    )
    assert_grad_close(grad, r['grad_pl'], 'PL grad', monkeypatch, [NL])


# ---------------------------------------------------------------------------------------------------------
# NVlabs options beyond the architecture (tests/data/arch/opt_*.npz; their outputs and gradients are checked
# with the architectures' above): inferred from the tensors, needed for the numbers, kept through every format.

OPTION_CONFIG = {  # what each file's tensors must make of (G, D) config fields
    'opt_layer_features': ({'layer_features': 48, 'c_dim': 4}, {'layer_features': 48, 'embed_features': None}),
    'opt_no_noise': ({'use_noise': False}, {}),
    'opt_filter121': ({'resample_filter': (1, 2, 1)}, {'resample_filter': (1, 2, 1)}),
    'opt_filter11': ({'resample_filter': (1, 1)}, {'resample_filter': (1, 1)}),
}


@pytest.mark.parametrize('ck', OPTIONS, indirect=True)
def test_nvlabs_options_inferred(ck, request):
    ck, r = ck
    g_want, d_want = OPTION_CONFIG[request.node.callspec.params['ck']]
    assert {k: getattr(ck.g_config, k) for k in g_want} == g_want
    assert {k: getattr(ck.d_config, k) for k in d_want} == d_want
    assert not [n for n in ck.notes if 'outside the StyleGAN2 schema' in n], ck.notes
    gen = ck.generator()
    if not ck.g_config.use_noise:  # no noise inputs: nothing to optimise in a projector, no noise mode matters
        assert gen.noise_shapes == {} and 'noise_const' not in str(jax.tree_util.tree_structure(gen.variables))
        ws = jnp.asarray(r['ws'])
        rnd = gen.synthesis(ws, noise_mode='random', key=jax.random.PRNGKey(0))
        assert rel_err(rnd, gen.synthesis(ws, noise_mode='const')) == 0
        with pytest.raises(KeyError, match='without noise inputs'):
            gen.synthesis(ws, noise={'b4.conv1': jnp.zeros((1, 4, 4))})


@pytest.mark.parametrize('ck', ['opt_filter121', 'opt_filter11'], indirect=True)
def test_resample_filter_is_used(ck):
    """The filter files are sensitive to the filter: with the default [1, 3, 3, 1] instead, G's images and D's
    logits are far from NVlabs' (so the parity above is evidence that the filter is applied)."""
    ck, r = ck
    gen, d = ck.generator(), ck.discriminator()
    g0 = gen.replace(config=gen.config.replace(resample_filter=(1, 3, 3, 1)))
    d0 = d.replace(config=d.config.replace(resample_filter=(1, 3, 3, 1)))
    assert rel_err(nchw(g0.synthesis(r['ws'])), r['img_const']) > 1e-2
    assert rel_err(d0(nhwc(r['d_input'])), r['logits']) > 1e-3


@pytest.mark.parametrize('ck', OPTIONS, indirect=True)
def test_nvlabs_options_survive_every_format(ck, tmp_path, request):
    """orbax store, the TF pickle and rosinality .pt (where the format can hold the option) give back the same
    outputs; where it cannot, the export refuses or notes it."""
    ck, r = ck
    name = request.node.callspec.params['ck']
    c = c_of(r)

    def same(back):
        assert back.g_config == ck.g_config and back.d_config == ck.d_config
        assert rel_err(nchw(back.generator().synthesis(r['ws'])), r['img_const']) <= TOL
        assert rel_err(back.discriminator()(nhwc(r['d_input']), c), r['logits']) <= TOL

    ck.save(tmp_path / 'store')
    same(aj.load_checkpoint(tmp_path / 'store'))
    if name == 'opt_layer_features':  # TF-ADA's D has one mapping width; rosinality's mapping is w_dim wide
        with pytest.raises(CheckpointError, match='one mapping width'):
            ck.export(tmp_path / 'tf.pkl')
        # (unconditional: c_dim is refused first) rosinality cannot build it: said; alignjax reads it back
        g = aj.new_generator(jax.random.PRNGKey(0), 16, z_dim=32, w_dim=32, mapping_layers=2, layer_features=48)
        with pytest.warns(UserWarning, match='style_dim wide throughout.*Generator cannot load it'):
            aj.Checkpoint(g.config, None, {'G_ema': g.variables}).export(tmp_path / 'r.pt')
        back = aj.load_checkpoint(tmp_path / 'r.pt').generator()
        assert back.config.layer_features == 48
        ws = jnp.asarray(r['ws'])
        assert rel_err(back.synthesis(ws), g.synthesis(ws)) == 0
        return
    if (ck.g_config.architecture, ck.d_config.architecture) != ('skip', 'resnet'):
        return  # the TF export writes and rosinality has skip G / resnet D only
    ck.export(tmp_path / 'tf.pkl')
    same(aj.load_checkpoint(tmp_path / 'tf.pkl'))
    with pytest.warns(UserWarning) as rec:
        notes = ck.export(tmp_path / 'r.pt')
    assert len(rec) == len(notes)
    if name == 'opt_no_noise':
        assert any('noise strength 0' in n for n in notes), notes
    else:
        assert any('blur_kernel=[1, 2, 1]' in n and 'Generator' in n for n in notes), notes
        assert any('blur_kernel=[1, 2, 1]' in n and 'Discriminator' in n for n in notes), notes
    back = aj.load_checkpoint(tmp_path / 'r.pt')
    assert back.g_config.resample_filter == ck.g_config.resample_filter
    assert rel_err(nchw(back.generator().synthesis(r['ws'])), r['img_const']) <= TOL
    assert rel_err(back.discriminator()(nhwc(r['d_input'])), r['logits']) <= TOL


LEGACY_OPTIONS = textwrap.dedent("""
    import sys, types, numpy as np
    repo, pkl, ref = sys.argv[1:4]
    c = types.ModuleType('click'); c.command = c.option = lambda *a, **k: (lambda f: f); sys.modules['click'] = c
    sys.path.insert(0, repo)
    import torch, legacy
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    r = np.load(ref)
    G, D = data['G_ema'], data['D']
    img = G.synthesis(torch.from_numpy(r['ws']), noise_mode='const').detach().numpy()
    print('img', float(np.abs(img - r['img_const']).max()))
    print('logits', float(np.abs(D(torch.from_numpy(r['d_input']), None).detach().numpy() - r['logits']).max()))
    print('use_noise', int(hasattr(G.synthesis.b4.conv1, 'noise_strength')))
""")


@pytest.mark.torch
@pytest.mark.parametrize('name', ['opt_no_noise', 'opt_filter121'])
def test_nvlabs_legacy_converts_option_exports(name, tmp_path):
    """NVlabs' legacy.py builds our TF export of a no-noise / [1, 2, 1]-filter model with that option and
    reproduces NVlabs' reference outputs (needs the stylegan2-ada-pytorch checkout and torch)."""
    repo = _nvlabs_repo()
    if repo is None:
        pytest.skip('NVlabs stylegan2-ada-pytorch (legacy.py) not found: set ALIGNJAX_NVLABS_REPO to a checkout')
    pytest.importorskip('torch')
    mp = pytest.MonkeyPatch()
    try:
        ck = aj.load_checkpoint(write_nvlabs_pickle(tmp_path / 'in.pkl', nets_of(ref(name)), mp))
    finally:
        mp.undo()
    ck.export(tmp_path / 'tf.pkl')
    (tmp_path / 'check.py').write_text(LEGACY_OPTIONS)
    cmd = [sys.executable, str(tmp_path / 'check.py'), str(repo), str(tmp_path / 'tf.pkl'), str(DATA / f'{name}.npz')]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = {k: float(v) for k, v in (line.split() for line in out.stdout.strip().splitlines())}
    assert got['use_noise'] == float(name != 'opt_no_noise'), got
    assert max(got['img'], got['logits']) < 2e-5, got


# ---------------------------------------------------------------------------------------------------------
# The TF pickle path (names derived from the table; legacy.py's rules, inverted, in conftest.write_tf_pickle).


@pytest.mark.parametrize('combo', ['resnet_skip', 'orig_orig'])
def test_tf_pickle_of_other_architectures(combo, tmp_path, monkeypatch):
    r = ref(combo)
    (g_sd, g_kw), (d_sd, d_kw) = nets_of(r, ('G', 'D')).values()
    clamp = g_kw['synthesis_kwargs']['conv_clamp']
    p = write_tf_pickle(
        tmp_path / 'tf.pkl',
        g_sd,
        d_sd,
        dict(architecture=g_kw['synthesis_kwargs']['architecture'], resolution=16, conv_clamp=clamp),
        dict(architecture=d_kw['architecture'], resolution=16, mbstd_group_size=4, conv_clamp=clamp),
        monkeypatch,
    )
    ck = aj.load_checkpoint(p)
    assert (ck.g_config.architecture, ck.d_config.architecture) == tuple(combo.split('_'))
    gen, d = ck.generator(), ck.discriminator()
    assert rel_err(nchw(gen.synthesis(r['ws'])), r['img_const']) <= TOL
    assert rel_err(d(nhwc(r['d_input'])), r['logits']) <= TOL
    for name, sd in (('G_ema', g_sd), ('D', d_sd)):  # and the same tensors as the NVlabs state dict
        cfg = ck.d_config if name == 'D' else ck.g_config
        back = convert.to_nvlabs(ck.nets[name], cfg)
        assert sorted(back) == sorted(sd)
        assert all(np.array_equal(back[k], sd[k]) for k in sd), name


def test_tf_kwargs_that_contradict_the_tensors_are_refused(tmp_path, monkeypatch):
    r = ref('resnet_skip')
    (g_sd, _), (d_sd, _) = nets_of(r, ('G', 'D')).values()
    p = write_tf_pickle(
        tmp_path / 'tf.pkl',
        g_sd,
        d_sd,
        dict(architecture='skip', resolution=16),
        dict(architecture='skip', resolution=16),
        monkeypatch,
    )
    with pytest.raises(CheckpointError, match="declares architecture 'skip' but its tensors are those of a 'resnet'"):
        aj.load_checkpoint(p)


# ---------------------------------------------------------------------------------------------------------
# Per-network loading: a D that cannot be built is left out, with a note; G and G_ema still load.


def test_unsupported_discriminator_is_skipped_not_the_file(tmp_path, monkeypatch):
    r = ref('skip_orig')
    p = write_nvlabs_pickle(
        tmp_path / 'relu_d.pkl', nets_of(r), monkeypatch, attrs={'D': {'b16.conv0': {'activation': 'relu'}}}
    )
    ck = aj.load_checkpoint(p)
    assert set(ck.nets) == {'G', 'G_ema'} and ck.d_config is None
    assert any(n.startswith('D not loaded:') and "b16.conv0 uses activation 'relu'" in n for n in ck.notes), ck.notes
    assert rel_err(nchw(ck.generator().synthesis(r['ws'])), r['img_const']) <= TOL
    with pytest.raises(CheckpointError, match=r'D was not loaded: .*relu_d\.pkl: D layer b16\.conv0 uses activation'):
        ck.discriminator()
    # a D of an unknown architecture (TF kwargs) is skipped the same way
    (g_sd, _), (d_sd, _) = nets_of(r, ('G', 'D')).values()
    p = write_tf_pickle(
        tmp_path / 'tf.pkl',
        g_sd,
        d_sd,
        dict(architecture='skip', resolution=16),
        dict(architecture='fancy', resolution=16),
        monkeypatch,
    )
    ck = aj.load_checkpoint(p)
    assert 'D' not in ck.nets and ck.generator().config.architecture == 'skip'
    with pytest.raises(CheckpointError, match="architecture 'fancy', which is not supported"):
        ck.discriminator()


def test_tf_nonlinearity_other_than_lrelu(tmp_path, monkeypatch):
    """TF-ADA's `nonlinearity` kwarg: a relu D is skipped with a note; a relu G (or mapping) refuses the file."""
    r = ref('skip_orig')
    (g_sd, _), (d_sd, _) = nets_of(r, ('G', 'D')).values()

    def tf(g_kw, d_kw):
        g_kw, d_kw = dict(architecture='skip', resolution=16) | g_kw, dict(architecture='orig', resolution=16) | d_kw
        return write_tf_pickle(tmp_path / 'tf.pkl', g_sd, d_sd, g_kw, d_kw, monkeypatch)

    ck = aj.load_checkpoint(tf({}, {'nonlinearity': 'relu'}))
    assert 'D' not in ck.nets and any("D sets nonlinearity='relu'" in n for n in ck.notes), ck.notes
    assert rel_err(nchw(ck.generator().synthesis(r['ws'])), r['img_const']) <= TOL
    for key in ('nonlinearity', 'mapping_nonlinearity'):
        with pytest.raises(CheckpointError, match=f"sets {key}='relu'; only 'lrelu'"):
            aj.load_checkpoint(tf({key: 'relu'}, {}))
    aj.load_checkpoint(tf({'nonlinearity': 'lrelu'}, {'nonlinearity': 'lrelu'})).discriminator()  # explicit default


def test_file_whose_generators_cannot_be_built_is_refused(tmp_path, monkeypatch):
    r = ref('skip_orig')
    attrs = {n: {'synthesis.b8.conv0': {'activation': 'relu'}} for n in ('G', 'G_ema')}
    p = write_nvlabs_pickle(tmp_path / 'relu_g.pkl', nets_of(r), monkeypatch, attrs=attrs)
    with pytest.raises(CheckpointError, match="G_ema layer synthesis.b8.conv0 uses activation 'relu'"):
        aj.load_checkpoint(p)


# ---------------------------------------------------------------------------------------------------------
# The architecture field is what the modules build and run.


def _synthesis_params_without(v, layers):
    out = jax.tree_util.tree_map(lambda x: x, v)
    for block, layer in layers:
        out['params']['synthesis'][block] = {k: x for k, x in out['params']['synthesis'][block].items() if k != layer}
    return out


def test_the_architecture_field_changes_the_forward_pass():
    """Same weights, another architecture, other numbers: nothing may fall back to skip G / resnet D."""
    r = ref('skip_skip')
    sd = nets_of(r, ('G',))['G'][0]
    skip = aj.GeneratorConfig(
        resolution=16, z_dim=32, w_dim=32, c_dim=4, mapping_layers=2, channel_base=128, channel_max=16
    )
    g_skip = aj.Generator(skip, convert.from_nvlabs(sd, skip))
    orig = skip.replace(architecture='orig')  # the same weights less the ToRGBs of b4 and b8
    keep = {k: v for k, v in sd.items() if not k.startswith(('synthesis.b4.torgb', 'synthesis.b8.torgb'))}
    g_orig = aj.Generator(orig, convert.from_nvlabs(keep, orig))
    ws = jnp.asarray(r['ws'])
    a, b = np.asarray(g_skip.synthesis(ws)), np.asarray(g_orig.synthesis(ws))
    assert rel_err(nchw(a), r['img_const']) <= TOL and np.abs(a - b).max() > 0.1
    with pytest.raises(CheckpointError, match='lacks keys.*b4.torgb'):
        convert.from_nvlabs(keep, skip)
    with pytest.raises(CheckpointError, match="unexpected key 'synthesis.b4.torgb"):
        convert.from_nvlabs(sd, orig)
    # D: resnet D with the orig D's weights plus zero skips differs from orig (the sqrt(1/2) gains)
    r = ref('resnet_resnet')
    d_sd = nets_of(r, ('D',))['D'][0]
    d_res = aj.DiscriminatorConfig(resolution=16, channel_base=128, channel_max=16, conv_clamp=1.0)
    d_orig = d_res.replace(architecture='orig')
    no_skip = {k: v for k, v in d_sd.items() if '.skip.' not in k}
    x = nhwc(r['d_input'])
    la = aj.Discriminator(d_res, convert.from_nvlabs(d_sd, d_res))(x)
    lb = aj.Discriminator(d_orig, convert.from_nvlabs(no_skip, d_orig))(x)
    assert rel_err(la, r['logits']) <= TOL and np.abs(np.asarray(la) - np.asarray(lb)).max() > 1e-2


@pytest.mark.parametrize('g_arch', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('d_arch', ['orig', 'skip', 'resnet'])
def test_modules_build_the_schema_of_every_architecture(g_arch, d_arch):
    from alignjax.model import _init_discriminator, _init_generator

    def shapes(tree, prefix=''):
        out = {}
        for k, v in tree.items():
            key = f'{prefix}.{k}' if prefix else k
            out.update(shapes(v, key) if isinstance(v, dict) else {key: tuple(v.shape)})
        return out

    g = aj.GeneratorConfig(
        resolution=16,
        z_dim=8,
        w_dim=8,
        c_dim=3,
        channel_base=128,
        channel_max=16,
        mapping_layers=2,
        architecture=g_arch,
    )
    d = aj.DiscriminatorConfig(
        resolution=16, c_dim=3, channel_base=128, channel_max=16, mapping_layers=1, architecture=d_arch
    )
    for cfg, init in ((g, _init_generator), (d, _init_discriminator)):
        traced = jax.eval_shape(init, cfg, jax.random.key(0))
        assert {col: shapes(dict(v)) for col, v in traced.items()} == convert.variable_shapes(cfg), cfg


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown generator architecture 'fancy'"):
        aj.GeneratorConfig(architecture='fancy')
    with pytest.raises(ValueError, match="unknown discriminator architecture 'fancy'"):
        aj.DiscriminatorConfig(architecture='fancy')


# ---------------------------------------------------------------------------------------------------------
# Save / export / morph / train.


@pytest.mark.parametrize('ck', ['resnet_skip'], indirect=True)
def test_store_round_trip_and_rosinality_refusal(ck, tmp_path):
    ck, r = ck
    ck.save(tmp_path / 'store')
    back = aj.load_checkpoint(tmp_path / 'store')
    assert (back.g_config.architecture, back.d_config.architecture) == ('resnet', 'skip')
    assert rel_err(nchw(back.generator().synthesis(r['ws'])), r['img_const']) <= TOL
    with pytest.raises(CheckpointError, match="rosinality's G is 'skip'; this one is 'resnet'"):
        ck.export_rosinality(tmp_path / 'g.pt')
    only_g = aj.Checkpoint(ck.g_config.replace(architecture='skip'), ck.d_config, {'D': ck.nets['D']})
    with pytest.raises(CheckpointError, match="rosinality's D is 'resnet'; this one is 'skip'"):
        only_g.export_rosinality(tmp_path / 'd.pt')


@pytest.mark.parametrize('ck', ['resnet_resnet', 'orig_skip'], indirect=True)
def test_fused_morph_blends_every_architecture(ck):
    """pair_synthesis (the fused morph) equals the materialised lerp of the two generators' weights, resnet
    skips and the orig's single ToRGB included."""
    from alignjax.apps import blend

    ck, r = ck
    a = ck.generator()
    b = child_of(a, scale=0.3)
    ws = jnp.asarray(r['ws'])
    noise = {
        k: jnp.broadcast_to(
            a.variables['buffers']['synthesis'][k.split('.')[0]][k.split('.')[1]]['noise_const'], (len(ws),) + s
        )
        for k, s in a.noise_shapes.items()
    }
    t = jnp.asarray([0.0, 0.3, 0.7, 1.0])
    fused = blend.pair_synthesis(a.config, a.params['synthesis'], b.params['synthesis'], ws, noise, t)
    for i, ti in enumerate(np.asarray(t)):
        g = a.with_variables(blend.lerp_variables(a.variables, b.variables, float(ti)))
        want = g.synthesis(ws[i : i + 1], noise={k: v[i : i + 1] for k, v in noise.items()})
        assert rel_err(fused[i : i + 1], want) <= 1e-4, ti


# every G and every D architecture in the default run (a step compiles for ~1 min on 2 CPU cores); the other
# three combinations of the reference files under -m slow
COMBOS_TRAIN = [
    ('orig', 'skip'),
    ('skip', 'orig'),
    ('resnet', 'resnet'),
    *(pytest.param(g, d, marks=pytest.mark.slow) for g, d in [('orig', 'orig'), ('skip', 'skip'), ('resnet', 'skip')]),
]


@pytest.mark.parametrize('g_arch,d_arch', COMBOS_TRAIN)
def test_training_step_for_every_architecture(g_arch, d_arch):
    """--config.model.g_architecture / d_architecture reach the networks; one whole step (G, D, R1, PL) runs
    and updates every parameter."""
    _one_training_step(g_arch, d_arch)


@pytest.mark.slow  # ~1-2 min: one more training-step compile
def test_training_step_with_nvlabs_options():
    """A model with the NVlabs options loaded above (no noise inputs, a [1, 2, 1] filter in G and D, a wider
    mapping) trains: one whole step updates every parameter, and there are no noise parameters to update."""
    _one_training_step('skip', 'resnet', dict(use_noise=False, resample_filter=(1, 2, 1), layer_features=24))


def _one_training_step(g_arch, d_arch, g_options=None):
    from alignjax.train import step as S
    from alignjax.train.config import base_config, model_configs

    c = base_config()
    c.model.update(
        dict(
            z_dim=16,
            w_dim=16,
            mapping_layers=2,
            channel_base=64,
            channel_max=16,
            mbstd_group_size=4,
            g_architecture=g_arch,
            d_architecture=d_arch,
        )
    )
    g_cfg, d_cfg = model_configs(c, 8, 0)
    assert (g_cfg.architecture, d_cfg.architecture) == (g_arch, d_arch)
    if g_options:
        g_cfg = g_cfg.replace(**g_options)
        d_cfg = d_cfg.replace(resample_filter=g_options.get('resample_filter', d_cfg.resample_filter))
    fns = S.StepFns(
        g_cfg,
        d_cfg,
        S.TrainHParams(
            batch=8, r1_gamma=1.0, ema_kimg=0.1, ema_rampup=None, augment='none', r1_interval=1, pl_interval=1
        ),
    )
    g = aj.new_generator(jax.random.key(0), config=g_cfg)
    d = aj.new_discriminator(jax.random.key(1), config=d_cfg)
    assert g_cfg.use_noise == ('noise_strength' in str(jax.tree_util.tree_structure(g.variables)))
    g_tx, d_tx = fns.optimizers(g.variables['params'], d.variables['params'])
    st0 = fns.place(S.init_state(jax.random.key(2), g.variables, d.variables, g.variables, g_tx, d_tx))
    host0 = jax.device_get(st0)
    reals = np.random.RandomState(0).randint(0, 256, (8, 8, 8, 3)).astype(np.uint8)
    st1, m = fns.step(st0, reals, np.zeros((8, 0), np.float32))
    assert all(np.isfinite(float(v)) for v in m.values()) and float(m['r1_penalty']) > 0
    host1 = jax.device_get(st1)
    for net in ('g', 'd'):
        before = jax.tree_util.tree_leaves_with_path(getattr(host0, net)['params'])
        after = jax.tree_util.tree_leaves(getattr(host1, net)['params'])
        same = [jax.tree_util.keystr(p) for (p, x), y in zip(before, after) if np.array_equal(x, y)]
        assert not same, f'{net}: unchanged {same}'
