"""alignjax.analysis on constructed cases whose answers are known: child == parent (changes 0, R^2 1, overlap 1,
slope ratio 1), a child with unrelated synthesis convs (point-wise R^2 ~ 0), a planted direction, zero-shot on
child == parent equal to the in-domain pipeline, and bad input. Uses the shipped zoo parent and evaluators."""

import json

import jax
import numpy as np
import pytest

import alignjax as aj
from alignjax import analysis as A
from alignjax.analysis.changes import component_of, reset_variables
from alignjax.eval import load_evaluator, load_zoo
from alignjax.model import new_generator


@pytest.fixture(scope='module')
def parent():
    return load_zoo('parent').generator()


@pytest.fixture(scope='module')
def faces_ev():
    return load_evaluator('faces', 32)


@pytest.fixture(scope='module')
def unrelated(parent):
    """The parent with every synthesis conv weight taken from an unrelated randomly initialised net."""
    rnd = new_generator(
        jax.random.key(123),
        resolution=32,
        **{k: getattr(parent.config, k) for k in ('z_dim', 'w_dim', 'mapping_layers', 'channel_base', 'channel_max')},
    )
    lr = dict(jax.tree_util.tree_leaves_with_path(rnd.variables))

    def pick(path, leaf):
        comp = component_of(jax.tree_util.keystr(path))[0]
        return lr[path] if comp.startswith('conv_') else leaf

    return parent.with_variables(jax.tree_util.tree_map_with_path(pick, parent.variables))


def test_identical_child_changes_nothing(parent):
    wc = A.weight_changes(parent, parent)
    assert set(wc.components) >= {'mapping', 'affine', 'conv_4', 'conv_32', 'torgb', 'bias', 'noise', 'const'}
    assert all(v == 0 for v in wc.components.values()) and wc.overall == 0 and wc.conv_distance == 0
    assert all(v == 0 for v in wc.layers.values())


def test_resetting_every_component_gives_the_parent(parent):
    child = load_zoo('toons').generator()
    wc = A.weight_changes(parent, child)
    assert 0 < wc.components['conv_16'] < 0.5 and wc.components['mapping'] < wc.components['conv_16']
    v = child.variables
    for comp in wc.components:
        v = reset_variables(parent, child.with_variables(v), comp)
    for a, b in zip(jax.tree_util.tree_leaves(v), jax.tree_util.tree_leaves(parent.variables)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    one = reset_variables(parent, child, 'mapping')
    np.testing.assert_array_equal(
        one['params']['mapping']['fc0']['weight'], parent.variables['params']['mapping']['fc0']['weight']
    )
    np.testing.assert_array_equal(
        one['params']['synthesis']['b8']['conv0']['weight'],
        child.variables['params']['synthesis']['b8']['conv0']['weight'],
    )


def test_reset_hybrids_known_answers(parent):
    """A 'child' that is the parent with only its 16x16 convs from the toons child: resetting conv_16 gives the
    parent back (all of the look lost, pixel change 1), resetting anything else changes nothing (0, 0)."""
    toons, ev = load_zoo('toons').generator(), load_evaluator('toons', 32)
    child = parent.with_variables(reset_variables(toons, parent, 'conv_16'))
    ref = A.reference_features(ev, 'toons', n=64)
    rs = A.reset_hybrids(parent, child, ev, ref, n=48, seed=1, examples=2)
    assert set(rs.hybrids) == set(A.weight_changes(parent, child).components)  # every component, const included
    assert rs.fd_child != rs.fd_parent
    h = rs.hybrids
    assert h['conv_16']['look_lost'] == pytest.approx(1, abs=1e-6) and h['conv_16']['pixel_change'] == pytest.approx(1)
    for comp in ('mapping', 'affine', 'const', 'conv_8', 'torgb', 'noise'):
        assert h[comp]['look_lost'] == pytest.approx(0, abs=1e-6) and h[comp]['pixel_change'] == 0, comp
    assert rs.examples['conv_16'].shape == (2, 32, 32, 3)


def test_identical_child_is_pointwise_aligned(parent, faces_ev):
    pw = A.pointwise_alignment(parent, parent, faces_ev, faces_ev, n=64)
    assert pw.factors and 'smile' in pw.not_measured  # the faces ruler does not read smiles
    for f, v in pw.factors.items():
        for m in ('z', 'w'):
            if f == 'glasses':
                assert v[m]['accuracy'] == 1.0
            else:
                assert v[m]['r2'] == pytest.approx(1.0, abs=1e-6), f
            assert v[m]['pearson'] == pytest.approx(1.0, abs=1e-6), f
    assert pw.landmarks['z']['px'] == pytest.approx(0.0, abs=1e-6)


def test_unrelated_synthesis_is_not_pointwise_aligned(parent, unrelated, faces_ev):
    with pytest.warns(A.NotAFineTuneWarning, match='does not look like a fine-tune'):
        pw = A.pointwise_alignment(parent, unrelated, faces_ev, faces_ev, n=96)
    assert pw.mean_r2['z'] < 0.2, pw.mean_r2
    assert abs(pw.mean_pearson['z']) < 0.3, pw.mean_pearson


def test_identical_child_is_semantically_aligned(parent, faces_ev):
    sem = A.semantic_alignment(
        parent, parent, faces_ev, faces_ev, n=128, transfer_n=8, k=5, factors=('hair_color', 'bg_value')
    )
    assert set(sem.factors) == {'hair_color', 'bg_value'}
    for v in sem.factors.values():
        assert v['s_iou'] == 1.0 and v['s_spearman'] == pytest.approx(1.0)
        assert v['w_cos'] == pytest.approx(1.0, abs=1e-9)
        assert v['w_slope_ratio'] == pytest.approx(1.0, abs=1e-6)
        assert v['s_slope_ratio'] == pytest.approx(1.0, abs=1e-6)
        assert v['w_slope_parent'] != 0


def test_planted_direction_and_channel_are_recovered():
    rs = np.random.RandomState(0)
    w = rs.randn(2000, 64)
    d = rs.randn(64)
    d /= np.linalg.norm(d)
    y = np.stack([w @ d * 3 + 0.1 * rs.randn(2000), rs.randn(2000)], 1)
    out = A.w_directions(w, y)
    assert abs(out['directions'][0] @ d) > 0.99 and out['r2'][0] > 0.99
    assert abs(out['directions'][1] @ d) < 0.2 and out['r2'][1] < 0.1
    s = rs.randn(2000, 50)
    s[:, 17] += 2 * (y[:, 0] > np.quantile(y[:, 0], 0.9))  # channel 17 fires on the positives
    rel = A.s_relevance(s, y[:, 0])
    assert int(np.argmax(rel)) == 17


def test_zero_shot_on_identical_child_equals_in_domain(parent, faces_ev):
    from alignjax.analysis.common import to_uint8
    from alignjax.eval.data import EVAL_SEED, render_set
    from alignjax.eval.scores import landmark_scores
    from alignjax.invert import InvertConfig, decode, invert

    zs = A.zero_shot(
        parent, parent, faces_ev, 'faces', oracle_labeller=faces_ev, n=4, steps=4, ks=(1, 8), train_n=128, start=500
    )
    a = zs.attributes
    assert set(a['zero_shot']) == {'W+ k=1', 'W+ k=8', 'W'} and zs.best in a['zero_shot']
    for key in a['zero_shot']:  # parent supervision == child supervision when the child is the parent
        assert a['zero_shot'][key] == a['oracle_latent'][key]
    assert a['naive'] == a['oracle']
    # the in-domain pipeline, computed independently: invert in the parent, decode by it, read, score
    data = render_set('faces', 32, EVAL_SEED, 500, 4)
    inv = invert(parent, data['image'], InvertConfig(space='w+', steps=4), progress=False)
    out = faces_ev(to_uint8(decode(parent, inv.latents)))
    want = landmark_scores(np.asarray(out['landmarks']), data['landmarks'], data['visible'], 32)
    for key, v in want.items():
        assert zs.dense['zero_shot'][key] == pytest.approx(v, abs=1e-6)


def test_morph_quality_endpoints(parent):
    child = load_zoo('toons').generator()
    ev = load_evaluator('toons', 32)
    mq = A.morph_quality(parent, child, ev, n=2, frames=5)
    full = mq.methods['latent+weights']
    assert full['endpoint_start'] == pytest.approx(0, abs=1e-5) and full['endpoint_end'] == pytest.approx(0, abs=1e-5)
    assert mq.methods['latent-only']['endpoint_end'] > 0.05 and mq.methods['weights-only']['endpoint_end'] > 0.05
    assert full['smooth_max_mean'] >= 1.0


def test_bad_inputs(parent, faces_ev):
    small = new_generator(jax.random.key(0), resolution=16, z_dim=128, w_dim=128, channel_base=512, channel_max=32)
    with pytest.raises(A.AnalysisError, match='different resolutions'):
        A.weight_changes(parent, small)
    narrow = new_generator(
        jax.random.key(0), resolution=32, z_dim=128, w_dim=128, mapping_layers=4, channel_base=2048, channel_max=32
    )
    with pytest.raises(A.AnalysisError, match='not aligned'):
        A.pointwise_alignment(parent, narrow, faces_ev, faces_ev, n=8)

    def wrong(images):
        return {'factors': np.zeros((len(images), 5))}

    with pytest.raises(A.AnalysisError, match=r'"factors" has shape \[8, 5\]'):
        A.pointwise_alignment(parent, parent, faces_ev, wrong, n=8)
    with pytest.raises(A.AnalysisError, match='must return a dict'):
        A.pointwise_alignment(parent, parent, faces_ev, lambda im: np.zeros((len(im), 18)), n=8)
    with pytest.raises(A.AnalysisError, match='reads 32x32'):
        A.pointwise_alignment(small, small, faces_ev, faces_ev, n=8)


def test_user_labeller_with_the_contract(parent, faces_ev):
    """A plain function with the Evaluator contract works (all expressed factors are then measured)."""

    def mine(images):
        o = faces_ev(images)
        return {'factors': np.asarray(o['factors'])}

    pw = A.pointwise_alignment(parent, parent, mine, mine, n=16)
    assert 'light_y' in pw.factors or 'pitch' in pw.factors  # not filtered by the shipped accuracy table
    assert pw.landmarks is None


def test_report_cli_fast(tmp_path, capsys):
    from alignjax.cli.report import main

    out = tmp_path / 'rep'
    from alignjax.eval.zoo import zoo_path

    rc = main(
        [
            '--fast',
            '--sections',
            'changes,pointwise,distant',
            '--child',
            f'toons={zoo_path("toons")}',
            '--out',
            str(out),
            '--noprogress',
        ]
    )
    assert rc == 0
    res = json.loads((out / 'results.json').read_text())
    assert set(res['sections']) == {'changes', 'pointwise'} and 'distant' not in res['sections']
    assert res['sections']['pointwise']['toons']['mean_r2']['z'] > 0
    assert res['settings']['fast'] and res['settings']['seed'] == 0
    assert 'distant' in res['skipped']  # no buildings child here: only toons, so no distant table
    html = (out / 'report.html').read_text()
    assert 'data:image/png;base64,' in html and 'src="figures/' not in html
    assert (out / 'figures' / 'changes_toons.png').exists()


def test_report_cli_without_evaluators_and_bad_flags(tmp_path, capsys):
    from alignjax.cli.report import main
    from alignjax.eval.zoo import zoo_path

    out = tmp_path / 'rep'
    rc = main(
        [
            '--fast',
            '--noevaluators',
            '--sections',
            'changes,pointwise',
            '--child',
            f'toons={zoo_path("toons")}',
            '--out',
            str(out),
            '--noprogress',
        ]
    )
    assert rc == 0
    res = json.loads((out / 'results.json').read_text())
    assert 'pointwise' in res['skipped'] and 'evaluator' in res['skipped']['pointwise']
    assert 'changes/reset' in res['skipped'] and 'toons' in res['sections']['changes']
    assert 'Skipped' in (out / 'report.md').read_text()
    with pytest.raises(SystemExit) as e:
        main(['--child', 'toons', '--out', str(out)])
    assert e.value.code == 1 and 'LABEL[:DOMAIN]=CHECKPOINT' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(['--sections', 'nope', '--out', str(out)])
    assert e.value.code == 1 and 'nope' in capsys.readouterr().err
    # the pair is checked before any analysis runs: another architecture is an error naming both checkpoints
    zparent = aj.load_checkpoint(zoo_path('parent')).generator()
    half = zparent.config.replace(channel_max=zparent.config.channel_max // 2)
    other = aj.new_generator(jax.random.key(3), config=half)
    aj.Checkpoint(other.config, None, {'G_ema': other.variables}).save(tmp_path / 'other')
    with pytest.raises(SystemExit) as e:
        main(['--child', f'toons={tmp_path / "other"}', '--out', str(tmp_path / 'rep2'), '--noprogress'])
    err = capsys.readouterr().err
    assert e.value.code == 1 and f'--child toons ({tmp_path / "other"})' in err and '--parent' in err, err
    # same architecture, but not fine-tuned from the parent: a one-line warning (the report still runs)
    from alignjax.cli.report import _check_child

    unrelated = aj.new_generator(jax.random.key(4), config=zparent.config)
    _check_child(zparent, unrelated, 'the pair')
    err = capsys.readouterr().err
    assert err.startswith('warning: the pair: the synthesis conv weights differ by') and err.count('\n') == 1, err
    _check_child(zparent, load_zoo('toons').generator(), 'the pair')
    assert capsys.readouterr().err == ''  # a real fine-tune: silent


def test_report_cli_with_user_labellers(tmp_path, capsys):
    """--labeller LABEL=MODULE:NAME: a user's own labelling function for models of unknown domains runs the
    label-using sections (here point-wise alignment) that --noevaluators alone skips; bad specs are one line."""
    from alignjax.cli.report import main
    from alignjax.eval.zoo import zoo_path

    out = tmp_path / 'rep'
    args = ['--fast', '--parent-domain', 'none', '--child', f'toy:none={zoo_path("toons")}', '--noprogress']
    args += ['--sections', 'changes,pointwise', '--out', str(out)]
    lab = ['--labeller', 'parent=user_labeller:band_colours', '--labeller', 'toy=user_labeller:band_colours']
    assert main(args + lab) == 0
    res = json.loads((out / 'results.json').read_text())
    assert 'pointwise' not in res['skipped'], res['skipped']
    assert res['models']['toy']['labeller'] == 'toy labeller' and res['models']['toy']['domain'] is None
    assert res['sections']['pointwise']['toy']['mean_r2']['z'] > 0.5  # a fine-tune keeps the band colours
    assert 'changes/reset' in res['skipped']  # FD to the child domain needs its renders: said, not guessed
    assert "user's labellers" in (out / 'report.md').read_text()
    for spec, msg in (
        ('parent=no_such_module_xyz:f', "cannot import 'no_such_module_xyz'"),
        ('parent=user_labeller:nothing', "has no 'nothing'"),
        ('parent=user_labeller:NOT_CALLABLE', 'not a function or Evaluator'),
        ('parent', 'write LABEL=MODULE:NAME'),
        ('nobody=user_labeller:band_colours', "--labeller for ['nobody']: not a model label"),
        ('parent=user_labeller:wrong_shape', '"factors" has shape ['),
    ):
        with pytest.raises(SystemExit) as e:
            main(args[:-1] + [str(tmp_path / 'bad'), '--labeller', spec, '--labeller', lab[3]])
        err = capsys.readouterr().err
        assert e.value.code == 1 and msg in err and err.count('\n') == 1, (spec, err)


def test_forgotten_glasses_direction_is_active_in_the_parent(parent, faces_ev):
    animals = load_zoo('animals').generator()
    fg = A.forgotten_directions(
        parent,
        {'parent': parent, 'animals': animals},
        faces_ev,
        {'parent': faces_ev, 'animals': load_evaluator('animals', 32)},
        n=256,
        edit_n=16,
        examples=0,
    )
    p = fg.models['parent']
    assert p['expresses_glasses'] and p['glasses']['feature_ratio'] > 1.5 and p['glasses']['glasses_prob_change'] > 0
    a = fg.models['animals']
    assert not a['expresses_glasses'] and a['glasses']['glasses_prob_change'] is None  # n/a, not a number
    assert fg.direction_norm > 0 and 0 < fg.parent_glasses_rate < 1


def test_translation_of_identical_child_is_the_reconstruction(parent, faces_ev):
    from alignjax.eval.data import EVAL_SEED, render_set

    data = render_set('faces', 32, EVAL_SEED, 10000, 2)
    inv = A.invert_inputs(parent, data['image'], steps=3, methods=('W+',))
    tr = A.translation_methods(parent, parent, inv, data, faces_ev, swap_res=(8,))
    np.testing.assert_array_equal(tr.examples['W+'], tr.examples['layer swap @8 (W+)'])
    assert tr.methods['W+']['factor_r2'] == tr.methods['layer swap @8 (W+)']['factor_r2']
    assert tr.methods['W+']['landmark_nme'] is not None and tr.methods['W+']['fd_eval'] is None


def test_gradient_maps_with_reverse_mode_only_convs():
    """Impl.wgrad='gemm' (what the zoo was trained with) makes the convs custom_vjp: forward-mode gradient maps
    must still run, with the same numbers as the reference convs."""
    from alignjax.analysis.semantic import gradient_maps

    g = new_generator(jax.random.key(0), resolution=8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64)
    g = g.with_impl(wgrad='gemm')
    s = A.common.styles(g, A.common.mapping(g, np.random.RandomState(0).randn(2, 8)))
    got, want = gradient_maps(g, s), gradient_maps(g.with_impl(wgrad='xla'), s)
    assert set(got) == set(g.style_names) and all(np.allclose(got[k], want[k], atol=1e-6) for k in got)
    assert all(float(np.abs(v).max()) > 0 for v in got.values())


@pytest.mark.slow  # ~50 s: compiles one jvp program per StyleSpace layer
def test_localised_channels_of_identical_child_overlap_fully(parent, faces_ev):
    assert parent.config.impl.wgrad == 'gemm'  # the zoo's (reverse-mode-only convs: gradient maps must cope)
    lr = A.localised_channels(parent, parent, faces_ev, faces_ev, n=2)
    assert lr.classes and all(v['iou'] == 1.0 for v in lr.classes.values()) and lr.mean_iou == 1.0
