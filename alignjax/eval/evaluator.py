"""Domain evaluators: one small CNN per procedural domain and resolution that reads an image's ground truth
back out of its pixels -- the 18 shared factors, the landmarks (with visibility) and the segmentation mask.

    ev = load_evaluator('faces', 32)            # shipped in assets/evaluators/faces_32 (or a directory path)
    out = ev(images)                            # images: uint8 [N, R, R, 3] or float [-1, 1]
    out['factors']      # [N, 18] in factor units (FACTOR_NAMES order); 'glasses' is a logit
    out['landmarks']    # [N, K, 2] pixel xy (pixel centres at integers, as the renderer's)
    out['visible']      # [N, K] probability that the landmark is visible
    out['mask_logits']  # [N, R, R, C] over MASK_CLASSES[domain]
    out['features']     # [N, D] penultimate features (FD_eval's feature space)

`Evaluator` is a pytree (params are leaves, the config is static): pass it to `jax.jit` / `jax.vmap` as an
argument. Anything with the same call contract (a user's own labelling function) can stand in for it in the
metrics and analyses; `expressed` says which factors a domain shows (`glasses` is never on `animals`;
`detail` is a nuisance seed, never a readable factor).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.data import procedural as P
from alignjax.errors import AlignjaxError
from alignjax.io.store import atomic_directory

ASSETS = Path(__file__).resolve().parents[2] / 'assets' / 'evaluators'
CONFIG_NAME = 'evaluator.json'
FACTOR_NAMES = P.FACTOR_NAMES
HUE = FACTOR_NAMES.index('bg_hue')
GLASSES = FACTOR_NAMES.index('glasses')
_LO = np.array([P.FACTOR_RANGES[n][0] for n in FACTOR_NAMES], np.float32)
_HI = np.array([P.FACTOR_RANGES[n][1] for n in FACTOR_NAMES], np.float32)


class EvaluatorError(AlignjaxError, ValueError):
    """An evaluator cannot be loaded or does not fit the images/model it is given."""


def expressed_factors(domain: str) -> np.ndarray:
    """bool [18]: the factors `domain` expresses (scored); others are n/a for it."""
    keep = np.ones(len(FACTOR_NAMES), bool)
    keep[FACTOR_NAMES.index('detail')] = False
    if domain == 'animals':
        keep[GLASSES] = False
    return keep


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    domain: str
    resolution: int
    width: int = 16  # channels at full resolution; doubled at each of 3 downsamplings
    feature_dim: int = 256

    @property
    def num_landmarks(self) -> int:
        return len(P.LANDMARK_NAMES[self.domain])

    @property
    def num_classes(self) -> int:
        return len(P.MASK_CLASSES[self.domain])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Block(nn.Module):
    ch: int

    @nn.compact
    def __call__(self, x):
        for _ in range(2):
            x = nn.Conv(self.ch, (3, 3), padding='SAME')(x)
            x = nn.GroupNorm(num_groups=min(8, self.ch // 4))(x)
            x = nn.relu(x)
        return x


def _pool(x):
    return nn.avg_pool(x, (2, 2), (2, 2))


def _up(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _s2d(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // 2, w // 2, 4 * c)


def _d2s(x):
    n, h, w, c4 = x.shape
    c = c4 // 4
    return x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)


class EvaluatorNet(nn.Module):
    """A small U-Net: encoder -> global features -> factor/landmark heads; decoder with skips -> mask logits.

    x [N, R, R, 3] in [-1, 1] -> dict of raw head outputs (see `Evaluator.__call__` for the decoded ones).
    The image enters by space-to-depth (lossless, [R/2, R/2, 12]) and the mask logits leave by depth-to-space,
    so no convolution runs at full resolution: on XLA:CPU the weight gradients of full-resolution convs cost
    more than all the rest of the net together."""

    cfg: EvaluatorConfig

    @nn.compact
    def __call__(self, x):
        w = self.cfg.width
        e1 = nn.relu(nn.Conv(2 * w, (3, 3), padding='SAME', name='stem')(_s2d(x)))  # R/2
        e2 = _Block(4 * w)(_pool(e1))  # R/4
        e3 = _Block(8 * w)(_pool(e2))  # R/8
        h = e3.reshape(e3.shape[0], -1)
        h = nn.relu(nn.Dense(self.cfg.feature_dim, name='fc')(h))
        feat = nn.Dense(self.cfg.feature_dim, name='features')(h)
        h = nn.relu(feat)
        k = self.cfg.num_landmarks
        fac = nn.Dense(len(FACTOR_NAMES) + 2, name='factors')(h)  # 18 normalised + (cos, sin) of hue
        lm = nn.Dense(2 * k, name='landmarks')(h).reshape(-1, k, 2)  # normalised xy in [-1, 1]
        vis = nn.Dense(k, name='visible')(h)  # logits
        u3 = nn.relu(nn.Conv(2 * w, (1, 1), name='dec3_in')(e3))
        d2 = nn.relu(
            nn.GroupNorm(num_groups=8)(
                nn.Conv(2 * w, (3, 3), padding='SAME', name='dec2')(jnp.concatenate([_up(u3), e2], -1))
            )
        )
        d1 = nn.relu(
            nn.GroupNorm(num_groups=8)(
                nn.Conv(2 * w, (3, 3), padding='SAME', name='dec1')(jnp.concatenate([_up(d2), e1], -1))
            )
        )
        seg = _d2s(nn.Conv(4 * self.cfg.num_classes, (1, 1), name='seg')(d1))
        return dict(factors=fac, landmarks=lm, visible=vis, mask_logits=seg, features=feat)


def as_input(images) -> jnp.ndarray:
    """uint8 [N, R, R, 3] -> float32 [-1, 1]; float images pass through (assumed in [-1, 1])."""
    x = jnp.asarray(images)
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * (2 / 255) - 1
    return x.astype(jnp.float32)


def decode(cfg: EvaluatorConfig, raw: dict) -> dict:
    """Raw head outputs -> the public contract (factor units, pixel landmarks, probabilities)."""
    f = raw['factors']
    norm = f[:, : len(FACTOR_NAMES)]
    fac = jnp.asarray(_LO) + (norm + 1) * 0.5 * jnp.asarray(_HI - _LO)
    hue = (jnp.arctan2(f[:, -1], f[:, -2]) / (2 * jnp.pi)) % 1.0
    fac = fac.at[:, HUE].set(hue).at[:, GLASSES].set(norm[:, GLASSES])
    lm = (raw['landmarks'] + 1) * 0.5 * cfg.resolution - 0.5
    return dict(
        factors=fac,
        landmarks=lm,
        visible=jax.nn.sigmoid(raw['visible']),
        mask_logits=raw['mask_logits'],
        features=raw['features'],
    )


@functools.partial(jax.jit, static_argnames=('cfg',))
def _apply(cfg, params, x):
    return decode(cfg, EvaluatorNet(cfg).apply({'params': params}, x))


@flax.struct.dataclass
class Evaluator:
    """A domain evaluator: static `config` + `params`. Call it on images (see the module docstring)."""

    config: EvaluatorConfig = flax.struct.field(pytree_node=False)
    params: Any

    @property
    def domain(self) -> str:
        return self.config.domain

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def expressed(self) -> np.ndarray:
        return expressed_factors(self.config.domain)

    def __call__(self, images, batch_size: int = 256) -> dict:
        x = as_input(images)
        if x.ndim != 4 or x.shape[1:] != (self.resolution, self.resolution, 3):
            raise EvaluatorError(
                f'the {self.domain} evaluator reads [N, {self.resolution}, {self.resolution}, 3] '
                f'images; got shape {tuple(x.shape)}'
            )
        if isinstance(x, jax.core.Tracer) or len(x) <= batch_size:
            return _apply(self.config, self.params, x)
        outs = [_apply(self.config, self.params, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)

    def save(self, path) -> Path:
        """Write to directory `path` (orbax params + evaluator.json) atomically."""
        return _save(self, path)


def new_evaluator(key, domain: str, resolution: int, **kw) -> Evaluator:
    """A randomly initialised evaluator for `domain` at `resolution`."""
    if domain not in P.DOMAINS:
        raise EvaluatorError(f'unknown domain {domain!r}; choose from {P.DOMAINS}')
    cfg = EvaluatorConfig(domain, int(resolution), **kw)
    params = _init(cfg, key)
    return Evaluator(cfg, params)


@functools.partial(jax.jit, static_argnames=('cfg',))
def _init(cfg, key):
    x = jnp.zeros((1, cfg.resolution, cfg.resolution, 3), jnp.float32)
    return EvaluatorNet(cfg).init(key, x)['params']


def _save(ev: Evaluator, path) -> Path:
    import orbax.checkpoint as ocp  # slow to import; only saving and loading need it

    path = Path(path).absolute()
    with atomic_directory(path) as tmp:
        with ocp.StandardCheckpointer() as cp:
            cp.save(tmp / 'params', jax.tree_util.tree_map(np.asarray, ev.params))
            cp.wait_until_finished()
        (tmp / CONFIG_NAME).write_text(json.dumps(dict(format_version=1, config=ev.config.to_dict()), indent=1))
    return path


def load_evaluator(domain_or_path, resolution: int | None = None) -> Evaluator:
    """The shipped evaluator of `domain` at `resolution` (assets/evaluators/<domain>_<res>), or one saved at
    a directory path."""
    import orbax.checkpoint as ocp

    if str(domain_or_path) in P.DOMAINS:
        if resolution is None:
            raise EvaluatorError(f'give the resolution of the {domain_or_path} evaluator (e.g. 32)')
        path = ASSETS / f'{domain_or_path}_{int(resolution)}'
        if not path.exists():
            have = sorted(p.name for p in ASSETS.glob('*_*')) if ASSETS.exists() else []
            raise EvaluatorError(
                f'no {domain_or_path} evaluator at {resolution}x{resolution}: {path} does not '
                f'exist (shipped: {have}); train one with `python -m alignjax.eval.train '
                f'--domain {domain_or_path} --res {resolution} --out {path}`'
            )
    else:
        path = Path(domain_or_path)
    cfg_file = path / CONFIG_NAME
    if not cfg_file.exists():
        raise EvaluatorError(f'{path} is not an evaluator directory (no {CONFIG_NAME})')
    try:
        cfg = EvaluatorConfig(**json.loads(cfg_file.read_text())['config'])
    except (ValueError, TypeError, KeyError) as e:
        raise EvaluatorError(f'{cfg_file}: unreadable evaluator config ({e})') from None
    if resolution is not None and cfg.resolution != int(resolution):
        raise EvaluatorError(f'{path} is a {cfg.resolution}x{cfg.resolution} evaluator; {resolution} was asked')
    abstract = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), jax.eval_shape(lambda: _init(cfg, jax.random.key(0)))
    )
    with ocp.StandardCheckpointer() as cp:
        params = cp.restore(path.absolute() / 'params', abstract)
    return Evaluator(cfg, params)
