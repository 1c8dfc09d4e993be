"""The shipped zoo: every model loads, samples, carries its card, and is a real fine-tune of its parent."""

import jax
import numpy as np
import pytest

from alignjax.eval import zoo as Z

CARD_KEYS = {'name', 'domain', 'parent', 'kimg', 'kimg_total', 'wall_s', 'machine', 'command', 'config'}


SHIPPED = [n for n in Z.ZOO if (Z.zoo_path(n) / 'card.json').exists()]


@pytest.mark.parametrize('name', SHIPPED)
def test_zoo_model_loads_and_samples(name):
    ck = Z.load_zoo(name)
    assert set(ck.nets) == {'G', 'G_ema', 'D'}
    gen = ck.generator()
    z = np.random.RandomState(0).randn(2, gen.z_dim).astype(np.float32)
    img = np.asarray(gen.synthesis(gen.mapping(z)))
    assert img.shape == (2, 32, 32, 3) and np.isfinite(img).all()
    card = Z.zoo_card(name)
    assert CARD_KEYS <= set(card) and card['domain'] == Z.ZOO[name].domain and card['kimg'] > 0
    assert card['config']['data']['spec'].startswith(f'proc:{Z.ZOO[name].domain}')


def _rel_change(a, b):
    la, lb = jax.tree_util.tree_leaves(a['params']), jax.tree_util.tree_leaves(b['params'])
    num = sum(float(np.sum((np.asarray(x) - np.asarray(y)) ** 2)) for x, y in zip(la, lb))
    return np.sqrt(num / sum(float(np.sum(np.asarray(y) ** 2)) for y in lb))


@pytest.mark.parametrize('name', [n for n in SHIPPED if Z.ZOO[n].parent])
def test_child_is_a_fine_tune_of_its_parent(name):
    """Not a copy (weights moved, images differ) and not unrelated (weights stay close to the parent's)."""
    child = Z.load_zoo(name).nets['G_ema']
    parent = Z.load_zoo(Z.ZOO[name].parent).nets['G_ema']
    rel = _rel_change(child, parent)
    assert 1e-4 < rel < 0.5, rel  # a copy is 0; animals_faces (4 kimg) moved G_ema by 9.8e-4
    gc, gp = Z.load_zoo(name).generator(), Z.load_zoo(Z.ZOO[name].parent).generator()
    z = np.random.RandomState(1).randn(4, gc.z_dim).astype(np.float32)
    diff = np.abs(np.asarray(gc.synthesis(gc.mapping(z))) - np.asarray(gp.synthesis(gp.mapping(z)))).mean()
    assert diff > 0.05, diff


def test_zoo_cli(tmp_path, capsys, monkeypatch):
    """`alignjax-zoo install NAME --workdir W | cards | tables | sheet` (also `python -m alignjax.eval.zoo`):
    --help, usage errors (exit 2), an unfinished run (one error line), an install into a scratch zoo."""
    import json
    import subprocess
    import sys

    from alignjax.cli import zoo as cli

    def fails(argv, code=2):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == code and err.startswith('error: ') and err.count('\n') == 1, (argv, err)
        return err

    with pytest.raises(SystemExit) as e:
        cli.main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and 'install NAME' in out and '--workdir' in out
    assert 'give a subcommand' in fails([])
    assert 'no such subcommand' in fails(['bogus'])
    assert 'install takes one zoo name' in fails(['install', 'nope'])
    assert "--n is not a flag of 'tables'" in fails(['tables', '--n', '3'])
    assert "unknown zoo model 'foo'" in fails(['cards', '--models', 'toons,foo'], 1)
    assert 'is not a finished model' in fails(['install', 'toons', '--workdir', str(tmp_path / 'run')], 1)
    # a finished run of the root model, installed into a scratch zoo
    run = tmp_path / 'run'
    (run / 'final').mkdir(parents=True)
    (run / 'final' / 'alignjax_config.json').write_text(json.dumps({'extra': {'kimg': 2.0, 'config': {}}}))
    (run / 'final' / 'weights').write_text('w')
    (run / 'metrics.jsonl').write_text(json.dumps({'kimg': 2.0, 'sec_per_kimg': 30.0}) + '\n')
    monkeypatch.setattr(Z, 'ZOO_DIR', tmp_path / 'zoo')
    assert cli.main(['install', 'parent', '--workdir', str(run)]) == 0
    assert 'installed' in capsys.readouterr().out
    card = json.loads((tmp_path / 'zoo' / 'parent' / 'card.json').read_text())
    assert card['kimg'] == 2.0 and card['kimg_total'] == 63.2 and card['wall_s'] == 60.0
    assert (tmp_path / 'zoo' / 'parent' / 'weights').read_text() == 'w'
    p = subprocess.run(
        [sys.executable, '-m', 'alignjax.eval.zoo', 'install'], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 2 and 'error: install takes one zoo name' in p.stderr and 'Traceback' not in p.stderr
