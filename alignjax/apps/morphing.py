"""Cross-domain morphing between aligned generators (StyleAlign, Wu et al. 2022, section 5).

A source image is inverted in the parent, a target image in the child. Frame t in [0, 1] renders the lerped
latent with every *synthesis* weight lerped: (1 - t) * parent + t * child (the mapping networks are never
blended: Z codes are first mapped by their own model, with the stored truncation, and the lerp is in W+).
Noise maps are lerped with the latent (the inverted ones, or each model's const noise). Frame 0 is the
parent's reconstruction of the source, the last frame the child's reconstruction of the target. With no
target, the image morphs into its own translation (same latent, weights lerped).

    frames = morph(parent, child, src_latents, tgt_latents)       # float [N, F, H, W, C], F = 110
    save_animation('out/morph', frames[0])                         # GIF + MP4 (~8 s) + strip PNG

Implementations (`impl`): 'fused' (default): frames batched with per-frame blend coefficients through
`alignjax.apps.blend.pair_synthesis` (two shared-weight convolutions per layer); 'vmap': per-frame weights
under jax.vmap (grouped convolutions); 'reload': the reference loop, building each frame's weights and
rendering it alone (what StyleAlign's MergeFace.py does). bench/morph.py compares them.

    alignjax-morph --parent P.pkl --child C.pkl --source img.png [--target cat.png] --outdir out

(the command line: alignjax/cli/morph.py; `python -m alignjax.apps.morphing` still runs it.)

(This module was `alignjax/apps/morph.py`, which the function `alignjax.apps.morph` shadowed; the old module
path still imports, as an alias registered by `alignjax.apps`.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.apps.blend import check_compatible, lerp_variables, pair_synthesis
from alignjax.errors import InputError
from alignjax.invert.project import Latents, check_latents, const_noise
from alignjax.nn.arch import synthesis_layers
from alignjax.nn.layers import lerp

DEFAULT_FRAMES = 110
DEFAULT_SECONDS = 8.0
IMPLS = ('fused', 'vmap', 'reload')
# 'auto' chunk: the largest fused activation of one call, in float32 elements: 512 MiB on accelerators; 64 MiB on
# CPU, where big calls gained nothing (bench/morph.py, 64^2, 110 frames: 16-55 frames per call 150-161
# frames/s, all 110 in one call 114-142 frames/s; at 32^2 with channels 64..16 one call of 110 gave x5.1 over
# per-frame reload vs x3.7 for calls of 16).
CHUNK_BUDGET = {'cpu': 1 << 24, 'default': 1 << 27}


def _noise_for(gen, lat: Latents, n: int):
    if lat.noise is not None:
        return {k: jnp.asarray(v, jnp.float32) for k, v in lat.noise.items()}
    return {k: jnp.broadcast_to(v, (n,) + v.shape) for k, v in const_noise(gen).items()}


def endpoints(parent, child, source: Latents, target: Latents | None = None):
    """(ws_a, ws_b, noise_a, noise_b): the W+ codes and explicit noise maps at t=0 (parent) and t=1 (child)."""
    n = len(source)
    tgt = source if target is None else target
    if len(tgt) != n:
        if len(tgt) == 1:
            tgt = tgt.take(np.zeros(n, int))
        else:
            raise InputError(f'{n} source latents but {len(tgt)} targets (give one target or as many)')
    ws_a = jnp.asarray(source.ws(parent), jnp.float32)
    ws_b = jnp.asarray(tgt.ws(child), jnp.float32)
    na = _noise_for(parent, source, n)
    nb = _noise_for(child, tgt, n) if (target is not None or source.noise is None) else na
    return ws_a, ws_b, na, nb


_lerp = lerp


@functools.partial(jax.jit, static_argnames=('cfg',))
def _fused(cfg, pa, pb, ws_a, ws_b, na, nb, tl, tw):
    ws = _lerp(ws_a, ws_b, tl[:, None, None])
    noise = {k: _lerp(na[k], nb[k], tl[:, None, None]) for k in na}
    return pair_synthesis(cfg, pa, pb, ws, noise, tw)


@jax.jit
def _vmapped(parent, va, vb, ws_a, ws_b, na, nb, tl, tw):
    def one(wa, wb, a, b, t_l, t_w):
        g = parent.with_variables(lerp_variables(va, vb, t_w))
        noise = {k: _lerp(a[k], b[k], t_l)[None] for k in a}
        return g.synthesis(_lerp(wa, wb, t_l)[None], noise=noise)[0]

    return jax.vmap(one)(ws_a, ws_b, na, nb, tl, tw)


@jax.jit
def _lerp_vars(va, vb, t):
    return lerp_variables(va, vb, t)


def frames_per_call(cfg, total: int, chunk='auto') -> int:
    """Frames rendered per compiled call. 'auto': as many as keep the largest fused activation (both endpoints'
    conv outputs, [B, r, r, 2 * channels]) under CHUNK_BUDGET[platform] elements, then evened out over the calls so the
    last one is not padded (CPU, 110 frames at 64^2 / 128 ch: 7 calls of 16)."""
    if chunk == 'auto':
        per_frame = max(s.res * s.res * 2 * s.out_channels for s in synthesis_layers(cfg))
        budget = CHUNK_BUDGET.get(jax.default_backend(), CHUNK_BUDGET['default'])
        cap = max(1, min(total, budget // per_frame))
    else:
        if int(chunk) < 1:
            raise InputError(f'chunk must be a positive frame count or "auto", got {chunk!r}')
        cap = min(int(chunk), total)
    calls = -(-total // cap)
    return -(-total // calls)


def _as_ts(frames):
    if isinstance(frames, (int, np.integer)):
        if frames < 2:
            raise InputError('need at least 2 frames')
        return np.linspace(0.0, 1.0, int(frames), dtype=np.float32)
    return np.asarray(frames, np.float32).reshape(-1)


def morph(
    parent,
    child,
    source: Latents,
    target: Latents | None = None,
    frames=DEFAULT_FRAMES,
    *,
    t_weights=None,
    impl: str = 'fused',
    chunk='auto',
    progress: bool = False,
) -> np.ndarray:
    """Frames [N, F, H, W, C] (float, ~[-1, 1]) morphing each source (parent) into its target (child).

    frames: a count (t = linspace(0, 1, F)) or the t values. t_weights: a separate schedule for the weights
    (default: the same as the latent's). impl: 'fused' | 'vmap' | 'reload' (see module doc). chunk: frames per
    compiled call for 'fused' / 'vmap', or 'auto' (`frames_per_call`).
    """
    if impl not in IMPLS:
        raise InputError(f'impl must be one of {IMPLS}, got {impl!r}')
    check_compatible(parent, child)
    check_latents(parent, source, 'source latents')
    if target is not None:
        check_latents(child, target, 'target latents')
    tl = _as_ts(frames)
    tw = tl if t_weights is None else _as_ts(t_weights)
    if tw.shape != tl.shape:
        raise InputError('t_weights must have as many values as frames')
    ws_a, ws_b, na, nb = endpoints(parent, child, source, target)
    n, f = ws_a.shape[0], tl.shape[0]
    img_i = np.repeat(np.arange(n), f)
    frm_i = np.tile(np.arange(f), n)
    total = n * f
    out = []
    bar = None
    if progress:
        from tqdm.auto import tqdm  # optional: progress bars only

        bar = tqdm(total=total, desc='morph', unit='frame', leave=False)
    va, vb = parent.variables, child.variables
    if impl == 'reload':
        for k in range(total):
            i, j = img_i[k], frm_i[k]
            g = parent.with_variables(_lerp_vars(va, vb, jnp.float32(tw[j])))
            noise = {key: _lerp(na[key][i], nb[key][i], tl[j])[None] for key in na}
            out.append(np.asarray(g.synthesis(_lerp(ws_a[i], ws_b[i], tl[j])[None], noise=noise)))
            if bar is not None:
                bar.update(1)
    else:
        pa, pb = va['params']['synthesis'], vb['params']['synthesis']
        bs = frames_per_call(parent.config, total, chunk)
        for s in range(0, total, bs):
            sel = np.arange(s, min(s + bs, total))
            pad = np.concatenate([sel, np.full(bs - len(sel), sel[-1])])
            ii, jj = jnp.asarray(img_i[pad]), frm_i[pad]
            args = (
                ws_a[ii],
                ws_b[ii],
                {k: v[ii] for k, v in na.items()},
                {k: v[ii] for k, v in nb.items()},
                jnp.asarray(tl[jj]),
                jnp.asarray(tw[jj]),
            )
            if impl == 'fused':
                y = _fused(parent.config, pa, pb, *args)
            else:
                y = _vmapped(parent, va, vb, *args)
            out.append(np.asarray(y)[: len(sel)])
            if bar is not None:
                bar.update(len(sel))
    if bar is not None:
        bar.close()
    imgs = np.concatenate(out)
    return imgs.reshape((n, f) + imgs.shape[1:])


if __name__ == '__main__':  # the old spelling of `alignjax-morph`
    from alignjax.cli.morph import main

    raise SystemExit(main())
