"""Training: losses, regularisers against the fixtures, lazy-reg Adam, EMA, freezing, data parallelism,
kill-and-resume, NaN guard. Tiny models (16x16, 16-32 channels) to keep compiles short."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alignjax as aj
from alignjax.train import losses as L
from alignjax.train import step as S

ROOT = Path(__file__).resolve().parents[1]
G_CFG = aj.GeneratorConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32)
D_CFG = aj.DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32, mbstd_group_size=4)


def tiny_state(fns, seed=0):
    g = aj.new_generator(jax.random.key(seed), config=G_CFG)
    d = aj.new_discriminator(jax.random.key(seed + 1), config=D_CFG)
    g_tx, d_tx = fns.optimizers(g.variables['params'], d.variables['params'])
    return fns.place(S.init_state(jax.random.key(seed + 2), g.variables, d.variables, g.variables, g_tx, d_tx))


def reals(n=8, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 16, 16, 3)).astype(np.uint8)


NO_LABELS = np.zeros((8, 0), np.float32)


# ---------------------------------------------------------------------------------------------------------
# Losses.


def test_losses_by_hand():
    f = jnp.array([[0.5], [-1.0]])
    r = jnp.array([[2.0], [0.0]])
    sp = lambda x: math.log1p(math.exp(x))
    assert float(L.g_nonsaturating(f)) == pytest.approx((sp(-0.5) + sp(1.0)) / 2, rel=1e-6)
    assert float(L.d_logistic(f, r)) == pytest.approx((sp(0.5) + sp(-1.0)) / 2 + (sp(-2.0) + sp(0.0)) / 2, rel=1e-6)
    # R1 of a linear "D": logits = <x, a>  ->  ||grad||^2 = ||a||^2 per sample
    a = jnp.arange(12.0).reshape(1, 2, 2, 3)
    pen, logits = L.r1_penalty(lambda x, c: jnp.sum(x * a, axis=(1, 2, 3))[:, None], jnp.ones((3, 2, 2, 3)))
    np.testing.assert_allclose(np.asarray(pen), float(jnp.sum(a**2)), rtol=1e-6)
    # path length of a linear "G": img = ws @ M, with y fixed -> lengths = ||M y|| / sqrt(num_ws) analytically
    m = jax.random.normal(jax.random.key(0), (4, 2 * 2 * 3))
    ws = jnp.ones((2, 3, 4))
    synth = lambda w, k: jnp.einsum('nlw,wp->np', w, m).reshape(2, 2, 2, 3)
    y = jax.random.normal(jax.random.key(1), (2, 2, 2, 3))
    pen, new_mean, lengths = L.path_length(synth, ws, jax.random.key(2), jnp.float32(0.5), 0.01, pl_noise=y)
    expect = np.sqrt(np.sum((np.asarray(m) @ np.asarray(y).reshape(2, -1).T) ** 2, axis=0))
    np.testing.assert_allclose(np.asarray(lengths), expect, rtol=1e-5)
    assert float(new_mean) == pytest.approx(0.5 + 0.01 * (expect.mean() - 0.5), rel=1e-5)
    np.testing.assert_allclose(np.asarray(pen), (expect - float(new_mean)) ** 2, rtol=1e-4)


def test_regularisers_match_fixture_gradients(fixtures_dir, reference):
    ck = aj.load_checkpoint(fixtures_dir / 'nvlabs.pkl')
    d, g = ck.discriminator(), ck.generator()
    x = jnp.transpose(jnp.asarray(reference['d_input']), (0, 2, 3, 1))
    pen, _ = L.r1_penalty(lambda img, c: d(img), x)
    ref = reference['D.grad_input']
    np.testing.assert_allclose(np.asarray(pen), (ref.astype(np.float64) ** 2).sum(axis=(1, 2, 3)), rtol=1e-4)
    y = jnp.transpose(jnp.asarray(reference['pl_noise']), (0, 2, 3, 1))
    _, _, lengths = L.path_length(
        lambda w, k: g.synthesis(w), jnp.asarray(reference['G_ema.ws']), jax.random.key(0), jnp.float32(0), pl_noise=y
    )
    gref = reference['G_ema.grad_ws'].astype(np.float64)
    np.testing.assert_allclose(np.asarray(lengths), np.sqrt((gref**2).sum(2).mean(1)), rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Optimiser and EMA maths.


def test_lazy_regularisation_adam_correction():
    r = 16 / 17
    tx = S.lazy_adam(0.002, (0.0, 0.99), 1e-8, 16)
    p = {'w': jnp.ones(3)}
    st = tx.init(p)
    g = {'w': jnp.array([0.5, -1.0, 2.0])}
    upd, st = tx.update(g, st, p)
    # one Adam step with lr*r, b2**r: bias-corrected m/sqrt(v) = sign(g) (b1 = 0 ** r = 0)
    b2 = 0.99**r
    v = (1 - b2) * np.asarray(g['w']) ** 2 / (1 - b2)
    expect = -0.002 * r * np.asarray(g['w']) / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(np.asarray(upd['w']), expect, rtol=1e-6)
    upd2, _ = tx.update(g, st, p)  # second step: m = g (b1 = 0), v accumulates with b2 ** r
    v2 = (b2 * (1 - b2) * np.asarray(g['w']) ** 2 + (1 - b2) * np.asarray(g['w']) ** 2) / (1 - b2**2)
    np.testing.assert_allclose(np.asarray(upd2['w']), -0.002 * r * np.asarray(g['w']) / (np.sqrt(v2) + 1e-8), rtol=1e-6)
    assert S.lazy_adam(0.002, (0.0, 0.99), 1e-8, 0) is not None  # no regularisation: plain Adam


def test_ema_beta_formula():
    """S.ema_beta is what the step traces (StepFns._finish calls it; test_step_updates_everything_and_ema checks
    the step's own beta against it and against the EMA update)."""
    # half-life of ema_kimg thousand images: after ema_kimg*1000/batch steps the weight of the old average is 1/2
    hp = S.TrainHParams(batch=32, ema_kimg=10.0, ema_rampup=None)
    beta = float(S.ema_beta(1_000_000_000, hp))
    assert beta ** (10_000 / 32) == pytest.approx(0.5, rel=1e-5)  # float32, as in the step
    ramp = S.TrainHParams(batch=32, ema_kimg=10.0, ema_rampup=0.05)
    assert float(S.ema_beta(0, ramp)) == 0.0  # ramp-up: copy at the start
    assert float(S.ema_beta(32_000, ramp)) == pytest.approx(0.5 ** (32 / 1600), rel=1e-6)
    assert float(S.ema_beta(10_000_000, ramp)) == pytest.approx(beta, rel=1e-6)  # ramp over: the half-life


@pytest.fixture(scope='module')
def fns():
    return S.StepFns(G_CFG, D_CFG, S.TrainHParams(batch=8, r1_gamma=1.0, ema_kimg=0.1, ema_rampup=None, augment='ada'))


def test_step_updates_everything_and_ema(fns):
    st0 = tiny_state(fns)
    host0 = jax.device_get(st0)
    st1, m = fns.step(st0, reals(), NO_LABELS)
    host1 = jax.device_get(st1)
    assert int(host1.step) == 1 and int(host1.nimg) == 8
    assert set(m) >= {'loss_G', 'loss_D', 'pl_penalty', 'r1_penalty', 'ema_beta', 'ada_p'}
    assert all(np.isfinite(float(v)) for v in m.values())
    beta = float(m['ema_beta'])  # the coefficient the step used (in the graph)
    assert beta == pytest.approx(0.5 ** (8 / 100), rel=1e-6) and beta == pytest.approx(float(S.ema_beta(0, fns.hp)))
    for a, e, e0 in zip(
        jax.tree_util.tree_leaves(host1.g['params']),
        jax.tree_util.tree_leaves(host1.g_ema['params']),
        jax.tree_util.tree_leaves(host0.g_ema['params']),
    ):
        np.testing.assert_allclose(e, a + beta * (e0 - a), rtol=1e-6, atol=1e-7)
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(jax.tree_util.tree_leaves(host0.d['params']), jax.tree_util.tree_leaves(host1.d['params']))
    ]
    assert all(changed)
    assert not np.array_equal(host0.g['buffers']['mapping']['w_avg'], host1.g['buffers']['mapping']['w_avg'])


def test_bfloat16_compute_trains_with_float32_params(fns):
    """--config.model.impl.dtype=bfloat16 (TPU/GPU users' first flag): params, optimiser state and EMA stay
    float32; the first two steps' losses and penalties stay within 2% of float32 compute."""
    from alignjax.nn.networks import Impl

    bf = S.StepFns(G_CFG.replace(impl=Impl(dtype='bfloat16')), D_CFG.replace(impl=Impl(dtype='bfloat16')), fns.hp)
    runs = []
    for f in (fns, bf):
        st, ms = tiny_state(f), []
        for i in range(2):
            st, m = f.step(st, reals(seed=i), NO_LABELS)
            ms.append({k: float(v) for k, v in m.items()})
        runs.append((jax.device_get(st), ms))
    (_, m32), (st_bf, mbf) = runs
    assert {str(a.dtype) for a in jax.tree_util.tree_leaves((st_bf.g, st_bf.d, st_bf.g_ema))} == {'float32'}
    for a, b in zip(m32, mbf):
        for k in ('loss_G', 'loss_D', 'fake_logits', 'real_logits', 'pl_penalty', 'r1_penalty'):
            if k in a:
                assert b[k] == pytest.approx(a[k], rel=2e-2, abs=2e-3), (k, a[k], b[k])


def test_freeze_options_bit_identical():
    from alignjax.train.loop import freeze_d_patterns

    hp = S.TrainHParams(batch=8, r1_gamma=1.0, freeze_g=(r'^mapping/',), freeze_d=tuple(freeze_d_patterns(D_CFG, 1)))
    f = S.StepFns(G_CFG, D_CFG, hp)
    st0 = jax.device_get(tiny_state(f))
    st = f.place(st0)
    for _ in range(2):
        st, _ = f.step(st, reals(), NO_LABELS)
    st = jax.device_get(st)
    for a, b in zip(
        jax.tree_util.tree_leaves(st0.g['params']['mapping']), jax.tree_util.tree_leaves(st.g['params']['mapping'])
    ):
        assert np.array_equal(a, b)
    for a, b in zip(
        jax.tree_util.tree_leaves(st0.d['params']['b16']), jax.tree_util.tree_leaves(st.d['params']['b16'])
    ):
        assert np.array_equal(a, b)
    assert not np.array_equal(st0.d['params']['b8']['conv0']['weight'], st.d['params']['b8']['conv0']['weight'])
    assert not np.array_equal(
        st0.g['params']['synthesis']['b16']['conv1']['weight'], st.g['params']['synthesis']['b16']['conv1']['weight']
    )


def test_eight_devices_match_one(fns):
    assert jax.device_count() == 8, 'conftest sets 8 fake CPU devices'
    one = S.StepFns(
        G_CFG,
        D_CFG,
        fns.hp,
        mesh=jax.make_mesh((1,), ('data',), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:1]),
    )
    st8, st1 = tiny_state(fns), tiny_state(one)
    for i in range(2):
        st8, m8 = fns.step(st8, reals(seed=i), NO_LABELS)
        st1, m1 = one.step(st1, reals(seed=i), NO_LABELS)
    assert len(st8.d['params']['b16']['conv0']['weight'].sharding.device_set) == 8
    for k in m1:
        assert float(m8[k]) == pytest.approx(float(m1[k]), rel=1e-4, abs=1e-5), k
    # The all-reduce sums in another order; Adam's first steps (b1 = 0: update ~ lr * g / |g|) amplify that
    # rounding where a gradient is ~0, so parameters agree to a small fraction of one step (lr = 2e-3).
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(st8)), jax.tree_util.tree_leaves(jax.device_get(st1))):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# The loop: kill-and-resume, NaN guard, fine-tuning.

TINY_OVERRIDES = [
    '--config.data.spec=proc:faces?n=64',
    '--config.data.resolution=16',
    '--config.model.z_dim=32',
    '--config.model.w_dim=32',
    '--config.model.mapping_layers=2',
    '--config.model.channel_base=256',
    '--config.model.channel_max=16',
    '--config.train.batch=8',
    '--config.train.r1_gamma=1.0',
    '--config.train.ema_kimg=0.1',
    '--config.log.tick_kimg=0.008',
    '--config.log.snapshot_kimg=0.016',
    '--config.log.grid_kimg=0.04',
    '--config.log.grid_size=4',
    '--config.log.grid_cols=4',
    '--config.stages=()',
    '--config.train.augment=ada',
]


def run_train(workdir, *extra, check=True, cwd=ROOT, what='train.py'):
    """A train.py subprocess (2 devices) with a timeout scaled by the machine's load per core (a shared machine at
    load 10+ must not fail this for the wrong reason), killed as a process group when it runs over."""
    from fault_harness import timeout_s

    cmd = [
        sys.executable,
        str(ROOT / 'train.py'),
        '--config',
        str(ROOT / 'configs' / 'demo.py'),
        f'--workdir={workdir}',
        *TINY_OVERRIDES,
        *extra,
    ]
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
    env.pop('ALIGNJAX_FAULT', None)
    limit = timeout_s(300)
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f'{what} did not finish within {limit:.0f} s (load average {os.getloadavg()[0]:.1f}): '
            f'{" ".join(cmd)}\n{out[-1500:]}\n{err[-1500:]}'
        )
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check:
        assert p.returncode == 0, f'{what} exited {p.returncode}\n' + p.stdout[-3000:] + p.stderr[-3000:]
    return p


def final_arrays(workdir):
    ck = aj.load_checkpoint(Path(workdir) / 'final')
    return {k: jax.tree_util.tree_leaves(v) for k, v in ck.nets.items()}, ck


def test_kill_and_resume_is_bit_exact(tmp_path):
    # 5 steps (R1 at step 0, path length at steps 0 and 4: the resumed run must pick the same lazy phases)
    run_train(tmp_path / 'a', '--config.train.kimg=0.040', what='the uninterrupted run')
    p = run_train(
        tmp_path / 'b',
        '--config.train.kimg=0.040',
        '--config.debug.kill_at_step=2',
        check=False,
        what='the run killed after step 2',
    )
    assert p.returncode == -9, p.stderr[-2000:]  # SIGKILLed after the save
    assert not (tmp_path / 'b' / 'final').exists()
    p = run_train(tmp_path / 'b', '--config.train.kimg=0.040', what='the resumed run')
    assert 'resumed from' in p.stdout and '/checkpoints/2 ' in p.stdout
    a, ck = final_arrays(tmp_path / 'a')
    b, _ = final_arrays(tmp_path / 'b')
    for net in ('G', 'G_ema', 'D'):
        for x, y in zip(a[net], b[net]):
            assert np.array_equal(x, y), net
    assert ck.extra['kimg'] == pytest.approx(0.040)
    lines = [json.loads(s) for s in (tmp_path / 'a' / 'metrics.jsonl').read_text().splitlines()]
    assert lines[-1]['step'] == 5 and 'loss_G' in lines[-1]
    b_lines = [json.loads(s) for s in (tmp_path / 'b' / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in b_lines] == [1, 2, 3, 4, 5]
    assert list((tmp_path / 'a' / 'samples').glob('grid_*.png'))
    # fine-tune a child from the parent's final export, mapping frozen: loads G, G_ema, D and trains on
    # (a relative workdir, as users type it)
    p = run_train(
        'child',
        '--config.train.kimg=0.016',
        f'--config.finetune.init_from={tmp_path / "a" / "final"}',
        '--config.finetune.freeze_mapping=True',
        '--config.data.spec=proc:toons?n=64',
        cwd=tmp_path,
        what='the fine-tune run',
    )
    child = aj.load_checkpoint(tmp_path / 'child' / 'final')
    parent = aj.load_checkpoint(tmp_path / 'a' / 'final')
    for x, y in zip(
        jax.tree_util.tree_leaves(parent.nets['G']['params']['mapping']),
        jax.tree_util.tree_leaves(child.nets['G']['params']['mapping']),
    ):
        assert np.array_equal(x, y)


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from alignjax.configs import get_config
    from alignjax.train import loop

    cfg = get_config('demo')
    cfg.stages = ()
    for o in TINY_OVERRIDES:
        key, val = o[len('--config.') :].split('=', 1)
        if key == 'stages':
            continue
        node = cfg
        *parents, last = key.split('.')
        for p in parents:
            node = node[p]
        node[last] = type(node[last])(val) if not isinstance(node[last], bool) else val == 'True'
    cfg.train.kimg = 0.08
    real_step = S.StepFns.step
    calls = {'n': 0}

    def poisoned(self, state, x, c, step_index=None):
        state, m = real_step(self, state, x, c, step_index)
        calls['n'] += 1
        if calls['n'] == 5:
            m = dict(m, loss_D=jnp.float32(jnp.nan))
        return state, m

    monkeypatch.setattr(S.StepFns, 'step', poisoned)
    with pytest.raises(loop.TrainingDiverged, match='loss_D'):
        loop.train(cfg, tmp_path)
    mgr = loop._manager(tmp_path, 3)
    assert mgr.latest_step() == 4  # the save at step 4 survives; nothing after the NaN was written
    assert not (tmp_path / 'final').exists()


def test_demo_runs_stages_then_apps(tmp_path, monkeypatch):
    """alignjax.apps.demo.run_demo (the job of alignjax-demo, and of alignjax-train for a config with
    demo_outputs): every stage through the training loop, then the apps on the first (parent) and second (child)
    stage's final models. The loop's own `run` writes no app output, whatever the config says."""
    import fault_harness as H

    from alignjax.apps import demo
    from alignjax.train import loop

    cfg = H.get_config()
    cfg.train.kimg = 2 * H.BATCH / 1000
    cfg.stages = (
        dict(name='parent', overrides={}),
        dict(name='child', overrides={'finetune.init_from': '{parent}', 'data.spec': 'proc:toons?n=32'}),
    )
    cfg.demo_outputs = True
    calls = []
    monkeypatch.setattr(demo, 'demo_outputs', lambda *a, **kw: calls.append((a, kw)))
    res = loop.run(cfg, tmp_path / 'a')
    assert list(res['finals']) == ['parent', 'child'] and (tmp_path / 'a' / 'compare.png').exists() and not calls
    res = demo.run_demo(cfg, tmp_path / 'b')
    wd = tmp_path / 'b'
    assert res['finals'] == {'parent': str(wd / 'parent' / 'final'), 'child': str(wd / 'child' / 'final')}
    assert calls == [((str(wd / 'parent' / 'final'), str(wd / 'child' / 'final'), wd), {'child_label': 'child'})]


def test_fresh_d_for_a_g_only_checkpoint_follows_the_g(tmp_path):
    """Fine-tuning a checkpoint without a D: the fresh D takes the loaded G's channels, conv_clamp and resample
    filter (not config.model's, which describe a model trained from scratch), and config.model's D settings."""
    import fault_harness as H

    from alignjax.train.loop import build_models

    g = aj.new_generator(
        jax.random.key(0), resolution=8, z_dim=16, w_dim=16, mapping_layers=1, channel_base=256, channel_max=16,
        conv_clamp=128.0, resample_filter=(1, 2, 1),
    )  # fmt: skip
    aj.Checkpoint(g.config, None, {'G_ema': g.variables}).save(tmp_path / 'g_only')
    c = H.get_config()
    c.finetune.init_from = str(tmp_path / 'g_only')
    c.model.mbstd_num_channels = 2
    g_cfg, d_cfg, _, _, d_vars, notes, _ = build_models(c, 8, 0, jax.random.key(1))
    assert any('has no discriminator' in n for n in notes)
    assert (d_cfg.channel_base, d_cfg.channel_max, d_cfg.conv_clamp) == (256, 16, 128.0)
    assert tuple(d_cfg.resample_filter) == (1, 2, 1) and d_cfg.mbstd_num_channels == 2
    assert c.model.conv_clamp is None and c.model.channel_base == 128  # (the config's own values differ)
    aj.nn.Discriminator(d_cfg).apply(d_vars, jnp.zeros((4, 8, 8, 3)))  # the variables fit the config
