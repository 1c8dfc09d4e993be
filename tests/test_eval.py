"""Domain evaluators: render pool determinism, scores on known answers, the call contract, exact resume of
training, and the shipped evaluators reaching their reported held-out accuracy on a fresh seed."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from alignjax.data import procedural as P
from alignjax.eval import evaluator as E
from alignjax.eval import scores as S
from alignjax.eval.data import RenderPool, degrade, render_set
from alignjax.eval.train import TrainSettings, train_evaluator

ROOT = Path(__file__).resolve().parents[1]


def test_render_pool_batches_are_a_function_of_step():
    kw = dict(pool_size=32, chunk=8, refresh_every=2, batch_size=6)
    walked = RenderPool('toons', 16, **kw)
    seq = [walked.batch(k) for k in range(7)]
    fresh = RenderPool('toons', 16, **kw)  # a resumed run: the pool rebuilt at step 6 directly
    b = fresh.batch(6)
    for k in RenderPool.KEYS:
        np.testing.assert_array_equal(b[k], seq[6][k])
    assert walked.newest_chunk(6) == 3 + 3
    assert not np.array_equal(seq[0]['image'], seq[1]['image'])
    walked.close(), fresh.close()


def test_scores_known_answers():
    f = P.sample_factors(5, 200)
    s = S.factor_scores(np.where(np.arange(18) == E.GLASSES, f * 2 - 1, f), f, 'faces')
    assert s['detail'] is None and all(abs(v - 1) < 1e-9 for v in s.values() if v is not None)
    hue = f.copy()
    hue[:, E.HUE] = (f[:, E.HUE] + 0.999) % 1.0  # 0.001 cycles off, across the wrap
    assert S.factor_scores(hue, f)['bg_hue'] > 0.999
    noisy = f + np.random.RandomState(0).normal(0, 0.3, f.shape).astype(np.float32)
    assert S.factor_scores(noisy, f)['yaw'] < 0.9
    assert S.factor_scores(f, f, 'animals')['glasses'] is None
    lm = np.random.RandomState(1).uniform(0, 31, (10, 6, 2))
    vis = np.ones((10, 6), bool)
    assert S.landmark_scores(lm, lm, vis, 32)['pck_0_05'] == 1.0
    off = S.landmark_scores(lm + [2.0, 0.0], lm, vis, 32)  # 2 px = 0.0625 of the image
    assert off['pck_0_05'] == 0.0 and off['pck_0_1'] == 1.0 and abs(off['nme'] - 2 / 32) < 1e-9
    m = np.random.RandomState(2).randint(0, 4, (5, 8, 8))
    assert S.mask_scores(S.confusion(m, m, 4), 'abcd')['miou'] == 1.0
    assert S.mask_scores(S.confusion((m + 1) % 4, m, 4), 'abcd')['miou'] == 0.0


def test_evaluator_contract_and_round_trip(tmp_path):
    ev = E.new_evaluator(jax.random.key(0), 'animals', 16, width=8)
    imgs = render_set('animals', 16, 1, 0, 3)['image']
    out = ev(imgs)
    k, c = len(P.LANDMARK_NAMES['animals']), len(P.MASK_CLASSES['animals'])
    assert out['factors'].shape == (3, 18) and out['landmarks'].shape == (3, k, 2)
    assert out['visible'].shape == (3, k) and out['mask_logits'].shape == (3, 16, 16, c)
    assert out['features'].shape == (3, 256)
    as_float = ev(imgs.astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(as_float['features'], out['features'], atol=1e-5)
    assert 0 <= float(out['factors'][:, E.HUE].min()) and float(out['factors'][:, E.HUE].max()) < 1
    assert not ev.expressed[E.GLASSES] and E.expressed_factors('faces')[E.GLASSES]
    with pytest.raises(E.EvaluatorError, match=r'\[N, 16, 16, 3\].*\(3, 32, 32, 3\)'):
        ev(np.zeros((3, 32, 32, 3), np.uint8))
    ev.save(tmp_path / 'ev')
    back = E.load_evaluator(tmp_path / 'ev', 16)
    np.testing.assert_array_equal(back(imgs)['features'], out['features'])
    with pytest.raises(E.EvaluatorError, match='16x16 evaluator; 32 was asked'):
        E.load_evaluator(tmp_path / 'ev', 32)
    with pytest.raises(E.EvaluatorError, match='python -m alignjax.eval.train --domain toons --res 128'):
        E.load_evaluator('toons', 128)
    with pytest.raises(E.EvaluatorError, match='not an evaluator directory'):
        E.load_evaluator(tmp_path, 16)


def test_training_resumes_exactly(tmp_path):
    s = TrainSettings(steps=6, batch=4, pool_size=16, chunk=8, refresh_every=2, warmup=1)
    kw = dict(width=8, ckpt_every=100, eval_n=8, quiet=True)
    assert train_evaluator('faces', 16, tmp_path / 'a', s, stop_after=3, **kw) is None  # time-boxed, saved
    assert (tmp_path / 'a' / '_train').exists() and not (tmp_path / 'a' / 'evaluator.json').exists()
    acc = train_evaluator('faces', 16, tmp_path / 'a', s, **kw)  # continues at step 3
    train_evaluator('faces', 16, tmp_path / 'b', s, **kw)  # uninterrupted
    a, b = E.load_evaluator(tmp_path / 'a'), E.load_evaluator(tmp_path / 'b')
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not (tmp_path / 'a' / '_train').exists()
    assert set(acc) >= {'clean', 'gan'} and acc['train']['steps'] == 6
    assert json.loads((tmp_path / 'a' / 'accuracy.json').read_text())['clean']['n'] == 8


def test_degrade_levels():
    imgs = render_set('faces', 32, 1, 0, 4)['image']
    assert np.array_equal(degrade(imgs), imgs)
    blurred = degrade(imgs, blur=1.0)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(imgs.astype(float), axis=1)).mean()
    assert not np.array_equal(degrade(imgs, jpeg_quality=30), imgs)


SHIPPED = sorted(p.name for p in (ROOT / 'assets' / 'evaluators').glob('*_32') if (p / 'accuracy.json').exists())


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_evaluator_reaches_reported_accuracy_on_a_fresh_seed(name):
    """Held-out accuracy on 1000 renders of a seed neither training (101) nor the report (202) used."""
    domain = name.split('_')[0]
    ev = E.load_evaluator(domain, 32)
    reported = json.loads((ROOT / 'assets' / 'evaluators' / name / 'accuracy.json').read_text())['clean']
    fresh = S.evaluate(ev, n=1000, seed=303)
    for k, v in reported['factors'].items():
        if v is not None and v >= 0.8:
            assert fresh['factors'][k] >= v - 0.02, (k, fresh['factors'][k], v)
    assert fresh['landmarks']['pck_0_1'] >= reported['landmarks']['pck_0_1'] - 0.02
    assert fresh['mask']['miou'] >= reported['mask']['miou'] - 0.02


def test_shipped_evaluators_exist_for_every_domain():
    assert SHIPPED == sorted(f'{d}_32' for d in P.DOMAINS)


def test_train_evaluator_cli(tmp_path, capsys, monkeypatch):
    """`alignjax-train-evaluator` / `python -m alignjax.eval.train`: the Makefile's flags reach train_evaluator;
    --help; flag errors are one line (exit 2); a library error is one line (exit 1)."""
    import subprocess
    import sys

    from alignjax.cli import eval_train as cli

    with pytest.raises(SystemExit) as e:
        cli.main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and 'Train one domain evaluator' in out and '--keep-state' in out
    calls = []
    monkeypatch.setattr(cli, 'train_evaluator', lambda *a, **kw: calls.append((a, kw)))
    assert (
        cli.main(
            [
                '--domain',
                'toons',
                '--res',
                '16',
                '--out',
                str(tmp_path / 'ev'),
                '--steps',
                '7',
                '--batch',
                '5',
                '--width',
                '8',
                '--eval-n',
                '9',
                '--keep-state',
            ]
        )
        == 0
    )
    assert calls == [
        (('toons', 16, str(tmp_path / 'ev'), TrainSettings(steps=7, batch=5)), dict(width=8, keep_state=True, eval_n=9))
    ]
    for argv, code, want in [
        (['--domain', 'nope', '--out', 'x'], 2, 'error: --domain=nope: value should be one of'),
        (['--out', 'x'], 2, 'error: --domain is required'),
        (['--domain', 'faces', '--out', 'x', '--bogus'], 2, 'error: --bogus: no such flag'),
        (['--domain', 'faces', '--out', 'x', '--steps', '0'], 1, 'error: --steps must be >= 1'),
        (['--domain', 'faces', '--out', str(tmp_path / 'none'), '--rescore'], 1, 'error: '),
    ]:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == code and err.startswith(want) and err.count('\n') == 1, (argv, err)
    p = subprocess.run(
        [sys.executable, '-m', 'alignjax.eval.train', '--help'], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert p.returncode == 0 and 'Train one domain evaluator' in p.stdout, p.stderr
