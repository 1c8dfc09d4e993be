"""Train state and the data-parallel StyleGAN2 training step (phases of NVlabs `training_loop.py`).

One step runs, in NVlabs order: Gmain; Greg (path length, every `pl_interval` steps); Dmain; Dreg (R1,
every `r1_interval` steps); then G_ema, ADA p and the counters. Each phase is one jit-compiled program
(the host picks the lazy ones), each with its own Adam step as NVlabs. Data parallelism: a 1-D device mesh
('data'); the global batch is sharded over it, the state replicated, and XLA inserts the gradient
all-reduce. Random numbers are drawn for the global batch, so the result does not depend on the number of
devices (to float rounding).
"""

from __future__ import annotations

import re
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from alignjax.nn import networks as N
from alignjax.train import augment, losses
from alignjax.train.config import TrainHParams  # (defined with the config keys it is built from)


def lazy_adam(lr, betas, eps, interval):
    """Adam with NVlabs' lazy-regularisation correction: lr * r, betas ** r, r = interval / (interval + 1)."""
    r = interval / (interval + 1) if interval else 1.0
    return optax.adam(lr * r, b1=betas[0] ** r, b2=betas[1] ** r, eps=eps)


def param_labels(params, patterns) -> Any:
    """'train' / 'freeze' per leaf, freezing leaves whose slash-joined path matches any regex."""
    regs = [re.compile(p) for p in patterns]

    def label(path, _):
        name = '/'.join(str(getattr(k, 'key', k)) for k in path)
        return 'freeze' if any(r.search(name) for r in regs) else 'train'

    return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(params, lr, hp: TrainHParams, interval, patterns):
    tx = lazy_adam(lr, hp.betas, hp.eps, interval)
    if not patterns:
        return tx
    return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()}, param_labels(params, patterns))


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 [], iterations done
    nimg: jax.Array  # int32 [], images shown
    g: Any  # {'params', 'buffers'} of G
    g_ema: Any  # {'params', 'buffers'} of G_ema
    d: Any  # {'params'} of D
    g_opt: Any
    d_opt: Any
    pl_mean: jax.Array  # float32 []
    ada: augment.AdaState
    key: jax.Array  # uint32 [2] raw PRNG key data


def init_state(key, g_vars, d_vars, g_ema_vars, g_tx, d_tx, ada_p: float = 0.0) -> TrainState:
    f32 = lambda t: jax.tree_util.tree_map(lambda a: jnp.array(a, jnp.float32, copy=True), t)  # no aliasing
    g_vars, d_vars, g_ema_vars = f32(g_vars), f32(d_vars), f32(g_ema_vars)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        nimg=jnp.zeros((), jnp.int32),
        g=g_vars,
        g_ema=g_ema_vars,
        d=d_vars,
        g_opt=g_tx.init(g_vars['params']),
        d_opt=d_tx.init(d_vars['params']),
        pl_mean=jnp.zeros((), jnp.float32),
        ada=augment.ada_init(ada_p),
        key=jax.random.key_data(key).astype(jnp.uint32),
    )


class StepFns:
    """Builds the jitted, sharded training step for given configs and hyper-parameters."""

    def __init__(self, g_cfg: N.GeneratorConfig, d_cfg: N.DiscriminatorConfig, hp: TrainHParams, mesh=None):
        if hp.batch % jax.device_count():
            raise ValueError(f'global batch {hp.batch} must be divisible by the device count {jax.device_count()}')
        self.g_cfg, self.d_cfg, self.hp = g_cfg, d_cfg, hp
        self.G, self.D = N.Generator(g_cfg), N.Discriminator(d_cfg)
        self.mesh = mesh or jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
        self.data_sharding = NamedSharding(self.mesh, PartitionSpec('data'))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.ada_spec = augment.AdaSpec.preset(hp.ada_spec)
        rep, dat = self.replicated, self.data_sharding
        jit = lambda f, ins: jax.jit(f, in_shardings=ins, out_shardings=(rep, rep), donate_argnums=(0,))
        self._jg_main = jit(self._g_main, (rep, dat, dat))
        self._jg_reg = jit(self._g_reg, (rep, dat))
        self._jd_main = jit(self._d_main, (rep, dat, dat))
        self._jd_reg = jit(self._d_reg, (rep, dat, dat))
        self._jfinish = jit(self._finish, (rep,))

    def place(self, state: TrainState) -> TrainState:
        """Commit a state to the mesh, replicated (as the step returns it: no second compile)."""
        return jax.device_put(state, self.replicated)

    def precompile(self, state: TrainState, image_shape, c_dim: int):
        """Compile every phase the loop will run for a global batch of `image_shape` ([B, R, R, 3] uint8),
        without running it (multi-host: the processes then start the first step together, whoever compiled
        from the persistent cache and whoever from scratch)."""
        hp = self.hp
        img = jax.ShapeDtypeStruct(tuple(image_shape), jnp.uint8, sharding=self.data_sharding)
        lab = jax.ShapeDtypeStruct((image_shape[0], c_dim), jnp.float32, sharding=self.data_sharding)
        self._jg_main.lower(state, img, lab).compile()
        if hp.pl_weight > 0:
            self._jg_reg.lower(state, lab).compile()
        self._jd_main.lower(state, img, lab).compile()
        if hp.r1_gamma > 0:
            self._jd_reg.lower(state, img, lab).compile()
        self._jfinish.lower(state).compile()

    def shard_batch(self, local_batch):
        """Host-local numpy batch -> global array sharded over 'data' (multi-host: each host's own part)."""
        return jax.tree_util.tree_map(
            lambda a: jax.make_array_from_process_local_data(self.data_sharding, np.asarray(a)), local_batch
        )

    def optimizers(self, g_params, d_params):
        hp = self.hp
        return (
            make_optimizer(g_params, hp.g_lr, hp, hp.pl_interval if hp.pl_weight else 0, hp.freeze_g),
            make_optimizer(d_params, hp.d_lr, hp, hp.r1_interval if hp.r1_gamma else 0, hp.freeze_d),
        )

    # -- pieces ------------------------------------------------------------------------------------------

    def _augment(self, x, key, p):
        if self.hp.augment == 'ada':
            return augment.ada_augment(x, key, p, self.ada_spec)
        if self.hp.augment == 'diffaugment':
            return augment.diff_augment(x, key, self.hp.diffaugment_policy)
        if self.hp.augment != 'none':
            raise ValueError(f'unknown augment {self.hp.augment!r}')
        return x

    def _mapping(self, g_vars, z, c, key):
        """ws with style mixing (prob hp.style_mixing, one crossover per batch) and the w_avg update."""
        ws, upd = self.G.apply(g_vars, z, c, update_emas=True, method='map', mutable=['buffers'])
        if self.hp.style_mixing > 0:
            k1, k2, k3 = jax.random.split(key, 3)
            num_ws = ws.shape[1]
            cutoff = jax.random.randint(k1, (), 1, num_ws)
            cutoff = jnp.where(jax.random.uniform(k2, ()) < self.hp.style_mixing, cutoff, num_ws)
            ws2 = self.G.apply(g_vars, jax.random.normal(k3, z.shape), c, method='map')
            ws = N.mix_styles(ws, ws2, cutoff)
        return ws, upd['buffers']

    def _synth(self, g_vars, ws, key):
        return self.G.apply(g_vars, ws, 'random', None, key, method='synthesize')

    def _disc(self, d_params, img, c):
        return self.D.apply({'params': d_params}, img, c)

    def _latents(self, key, n, c_real):
        z = jax.random.normal(key, (n, self.g_cfg.z_dim))
        z = jax.lax.with_sharding_constraint(z, self.data_sharding)
        c = None
        if self.g_cfg.c_dim:  # generated labels: the real labels of a shuffled batch, as NVlabs samples them
            c = jax.random.permutation(jax.random.fold_in(key, 1), c_real)[:n]
        return z, c

    # -- the phases ----------------------------------------------------------------------------------------
    # Each phase is its own jitted program (a lax.cond around the lazy regularisers made XLA:CPU run them
    # 50-100x slower). Keys: fold_in(fold_in(seed key, step), phase), so every phase is reproducible alone.

    def _key(self, state, phase):
        return jax.random.fold_in(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step), phase)

    def _g_main(self, state: TrainState, reals_u8, c_real):
        """Gmain: non-saturating loss through D(augment(G(z)))."""
        c_real = c_real if self.g_cfg.c_dim else None
        g_tx, _ = self.optimizers(state.g['params'], state.d['params'])
        k = self._key(state, 0)
        z, c = self._latents(jax.random.fold_in(k, 0), reals_u8.shape[0], c_real)

        def loss(g_params):
            g_vars = {'params': g_params, 'buffers': state.g['buffers']}
            ws, buffers = self._mapping(g_vars, z, c, jax.random.fold_in(k, 1))
            img = self._synth(g_vars, ws, jax.random.fold_in(k, 2))
            logits = self._disc(state.d['params'], self._augment(img, jax.random.fold_in(k, 3), state.ada.p), c)
            return losses.g_nonsaturating(logits), (buffers, logits)

        (g_loss, (buffers, logits)), grads = jax.value_and_grad(loss, has_aux=True)(state.g['params'])
        upd, g_opt = g_tx.update(grads, state.g_opt, state.g['params'])
        g = {'params': optax.apply_updates(state.g['params'], upd), 'buffers': buffers}
        return state.replace(g=g, g_opt=g_opt), dict(loss_G=g_loss, fake_logits=jnp.mean(logits))

    def _g_reg(self, state: TrainState, c_real):
        """Greg: path-length regularisation on batch / pl_batch_shrink samples (lazy: loss x pl_interval)."""
        hp = self.hp
        c_real = c_real if self.g_cfg.c_dim else None
        g_tx, _ = self.optimizers(state.g['params'], state.d['params'])
        k = self._key(state, 1)
        n = max(hp.batch // hp.pl_batch_shrink, 1)
        z, c = self._latents(jax.random.fold_in(k, 0), n, c_real)

        def loss(g_params):
            g_vars = {'params': g_params, 'buffers': state.g['buffers']}
            ws, buffers = self._mapping(g_vars, z, c, jax.random.fold_in(k, 1))
            pen, new_mean, _ = losses.path_length(
                lambda w, kk: self._synth(g_vars, w, kk), ws, jax.random.fold_in(k, 2), state.pl_mean, hp.pl_decay
            )
            return jnp.mean(pen) * hp.pl_weight * hp.pl_interval, (buffers, new_mean, jnp.mean(pen))

        (_, (buffers, pl_mean, pen)), grads = jax.value_and_grad(loss, has_aux=True)(state.g['params'])
        upd, g_opt = g_tx.update(grads, state.g_opt, state.g['params'])
        g = {'params': optax.apply_updates(state.g['params'], upd), 'buffers': buffers}
        return state.replace(g=g, g_opt=g_opt, pl_mean=pl_mean), dict(pl_penalty=pen, pl_mean=pl_mean)

    def _d_main(self, state: TrainState, reals_u8, c_real):
        """Dmain: logistic loss on augmented fakes (from the updated G) and reals; ADA statistics."""
        c_real = c_real if self.g_cfg.c_dim else None
        _, d_tx = self.optimizers(state.g['params'], state.d['params'])
        reals = reals_u8.astype(jnp.float32) / 127.5 - 1.0
        k = self._key(state, 2)
        p = state.ada.p
        z, c = self._latents(jax.random.fold_in(k, 0), reals.shape[0], c_real)
        ws, buffers = self._mapping(state.g, z, c, jax.random.fold_in(k, 1))
        g_vars = {'params': state.g['params'], 'buffers': buffers}
        fake = jax.lax.stop_gradient(self._synth(g_vars, ws, jax.random.fold_in(k, 2)))

        def loss(d_params):
            fl = self._disc(d_params, self._augment(fake, jax.random.fold_in(k, 3), p), c)
            rl = self._disc(d_params, self._augment(reals, jax.random.fold_in(k, 4), p), c_real)
            return losses.d_logistic(fl, rl), rl

        (d_loss, real_logits), grads = jax.value_and_grad(loss, has_aux=True)(state.d['params'])
        upd, d_opt = d_tx.update(grads, state.d_opt, state.d['params'])
        d = {'params': optax.apply_updates(state.d['params'], upd)}
        ada = augment.ada_accumulate(state.ada, real_logits) if self.hp.augment == 'ada' else state.ada
        return (
            state.replace(g=g_vars, d=d, d_opt=d_opt, ada=ada),
            dict(loss_D=d_loss, real_logits=jnp.mean(real_logits)),
        )

    def _d_reg(self, state: TrainState, reals_u8, c_real):
        """Dreg: R1 on (augmented) reals (lazy: loss x r1_interval)."""
        hp = self.hp
        c_real = c_real if self.g_cfg.c_dim else None
        _, d_tx = self.optimizers(state.g['params'], state.d['params'])
        reals = reals_u8.astype(jnp.float32) / 127.5 - 1.0
        k = self._key(state, 3)

        def loss(d_params):
            pen, _ = losses.r1_penalty(
                lambda x, cc: self._disc(d_params, self._augment(x, k, state.ada.p), cc), reals, c_real
            )
            return jnp.mean(pen) * (hp.r1_gamma / 2) * hp.r1_interval, jnp.mean(pen)

        (_, pen), grads = jax.value_and_grad(loss, has_aux=True)(state.d['params'])
        upd, d_opt = d_tx.update(grads, state.d_opt, state.d['params'])
        return (
            state.replace(d={'params': optax.apply_updates(state.d['params'], upd)}, d_opt=d_opt),
            dict(r1_penalty=pen),
        )

    def _finish(self, state: TrainState):
        """G_ema (half-life ema_kimg over the global batch, optional ramp-up; buffers copied), ADA p, counters."""
        hp = self.hp
        b = hp.batch
        beta = ema_beta(state.nimg, hp)
        g_ema = {
            'params': jax.tree_util.tree_map(
                lambda p_, e: p_ + beta * (e - p_), state.g['params'], state.g_ema['params']
            ),
            'buffers': state.g['buffers'],
        }
        ada = state.ada
        if hp.augment == 'ada':
            ada = augment.ada_step(
                ada, batch_size=b, ada_interval=hp.ada_interval, ada_target=hp.ada_target, ada_kimg=hp.ada_kimg
            )
        new = state.replace(step=state.step + 1, nimg=state.nimg + b, g_ema=g_ema, ada=ada)
        return new, dict(ema_beta=beta, ada_p=ada.p, pl_mean=state.pl_mean)

    def step(self, state: TrainState, reals_u8, c_real, step_index: int | None = None):
        """One training iteration (all phases); returns (state, metrics as device scalars).

        step_index: the host's copy of state.step, which picks the lazy phases; pass it in loops so the step
        never waits on the device (without it, state.step is read back, a host round-trip).
        """
        hp = self.hp
        i = int(state.step) if step_index is None else step_index
        metrics = {}
        state, m = self._jg_main(state, reals_u8, c_real)
        metrics.update(m)
        if hp.pl_weight > 0 and i % max(hp.pl_interval, 1) == 0:
            state, m = self._jg_reg(state, c_real)
            metrics.update(m)
        state, m = self._jd_main(state, reals_u8, c_real)
        metrics.update(m)
        if hp.r1_gamma > 0 and i % max(hp.r1_interval, 1) == 0:
            state, m = self._jd_reg(state, reals_u8, c_real)
            metrics.update(m)
        state, m = self._jfinish(state)
        metrics.update(m)
        return state, metrics


def ema_beta(nimg, hp: TrainHParams):
    """The G_ema coefficient of the step after `nimg` images (int32 []): half-life `ema_kimg` thousand images over
    the global batch, with the optional ramp-up. The step traces this; tests call it eagerly."""
    ema_nimg = jnp.float32(hp.ema_kimg * 1000)
    if hp.ema_rampup is not None:
        ema_nimg = jnp.minimum(ema_nimg, jnp.asarray(nimg).astype(jnp.float32) * hp.ema_rampup)
    return 0.5 ** (hp.batch / jnp.maximum(ema_nimg, 1e-8))


def finite(tree) -> bool:
    return all(
        bool(np.all(np.isfinite(np.asarray(x))))
        for x in jax.tree_util.tree_leaves(tree)
        if np.issubdtype(np.asarray(x).dtype, np.floating)
    )
