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
    assert 1e-3 < rel < 0.5, rel
    gc, gp = Z.load_zoo(name).generator(), Z.load_zoo(Z.ZOO[name].parent).generator()
    z = np.random.RandomState(1).randn(4, gc.z_dim).astype(np.float32)
    diff = np.abs(np.asarray(gc.synthesis(gc.mapping(z))) - np.asarray(gp.synthesis(gp.mapping(z)))).mean()
    assert diff > 0.05, diff
