"""StyleGAN2 losses, as NVlabs `training/loss.py` (StyleGAN2Loss), written as pure functions.

Every function takes callables instead of modules so the same code serves any parameter pytree:
  gen_fn(z, c, key)  -> (images [N, H, W, C], ws [N, num_ws, w_dim])
  synth_fn(ws, key)  -> images                 (for path length: gradient w.r.t. ws)
  disc_fn(images, c) -> logits [N, 1]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def g_nonsaturating(fake_logits):
    """Generator loss: softplus(-D(G(z))), averaged over the batch."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def d_logistic(fake_logits, real_logits):
    """Discriminator loss: softplus(D(G(z))) + softplus(-D(x)), averaged over the batch."""
    return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def r1_penalty(disc_fn, reals, c=None):
    """Per-sample ||d sum D(x) / dx||^2 on real images, and the logits. reals: [N, H, W, C] -> ([N], [N, 1])."""

    def total(x):
        logits = disc_fn(x, c)
        return jnp.sum(logits), logits

    grads, logits = jax.grad(total, has_aux=True)(reals)
    return jnp.sum(jnp.square(grads), axis=(1, 2, 3)), logits


def path_length(synth_fn, ws, key, pl_mean, decay: float = 0.01, pl_noise=None):
    """Path-length regulariser (Karras et al. 2020). Returns (penalty [N], new pl_mean, lengths [N]).

    y ~ N(0, I) / sqrt(H W) (or `pl_noise`, already scaled); lengths = sqrt(mean over ws of
    ||d sum(G(w) * y) / dw||^2); pl_mean <- pl_mean + decay (mean(lengths) - pl_mean);
    penalty = (lengths - pl_mean)^2 with the new mean.
    """
    k_noise, k_synth = jax.random.split(key)
    img, vjp = jax.vjp(lambda w: synth_fn(w, k_synth), ws)
    if pl_noise is None:
        h, w = img.shape[1], img.shape[2]
        pl_noise = jax.random.normal(k_noise, img.shape, img.dtype) / jnp.sqrt(jnp.float32(h * w))
    (grads,) = vjp(pl_noise.astype(img.dtype))
    lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
    new_mean = pl_mean + decay * (jnp.mean(jax.lax.stop_gradient(lengths)) - pl_mean)
    return jnp.square(lengths - new_mean), new_mean, lengths
