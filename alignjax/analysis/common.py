"""Shared pieces of the analyses: pair checks, labellers, sampling, small statistics.

A *labeller* is anything with the `Evaluator` contract: `labeller(images uint8|[-1,1] NHWC) -> dict` with
'factors' [N, 18] (the procedural factor order) and optionally 'landmarks' [N, K, 2], 'visible' [N, K],
'mask_logits' [N, H, W, C], 'features' [N, D]. `as_labeller` wraps a user's function, checks its output shapes
on the first call and raises `AnalysisError` naming the key and shape when they do not fit.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.apps.blend import check_compatible
from alignjax.data import procedural as P
from alignjax.errors import AlignjaxError
from alignjax.eval.evaluator import Evaluator, expressed_factors
from alignjax.eval.scores import readable_factors
from alignjax.metrics.extractors import PixelProjection

FACTOR_NAMES = tuple(P.FACTOR_NAMES)
HUE = FACTOR_NAMES.index('bg_hue')
GLASSES = FACTOR_NAMES.index('glasses')
# a fine-tune moves the synthesis conv weights by a few percent to a few tens of percent; an unrelated model
# by about sqrt(2) (two independent draws of the same scale)
NOT_A_FINETUNE = 0.9


class AnalysisError(AlignjaxError, ValueError):
    """The analysis inputs do not fit (architectures, labeller outputs, sizes): one line naming what."""


class NotAFineTuneWarning(UserWarning):
    """The child's weights are as far from the parent's as an unrelated model's: not a fine-tune of it."""


# ----------------------------------------------------------------------------------------------------------
# Pair checks.


def check_pair(parent, child, what: str = 'parent and child', warn: bool = True) -> float:
    """AnalysisError unless parent and child share the architecture (resolution, dims, every synthesis
    parameter shape); warns (`NotAFineTuneWarning`) when the child is not a fine-tune of the parent (relative
    distance of the synthesis conv weights >= NOT_A_FINETUNE). Returns that relative distance."""
    if not (hasattr(parent, 'synthesis') and hasattr(child, 'synthesis')):
        raise AnalysisError(
            f'{what}: expected alignjax Generators (ck.generator()), got '
            f'{type(parent).__name__} and {type(child).__name__}'
        )
    if parent.resolution != child.resolution:
        raise AnalysisError(
            f'{what} have different resolutions ({parent.resolution} vs {child.resolution}): '
            f'not a parent and its fine-tuned child'
        )
    try:
        check_compatible(parent, child, what)
    except ValueError as e:
        raise AnalysisError(str(e)) from None
    d = conv_distance(parent, child)
    if warn and d >= NOT_A_FINETUNE:
        warnings.warn(
            f'{what}: the synthesis conv weights differ by {d:.2f} of their norm (a fine-tune moves '
            f'them by well under {NOT_A_FINETUNE}); the child does not look like a fine-tune of the '
            f'parent, so alignment numbers compare unrelated models',
            NotAFineTuneWarning,
            stacklevel=3,
        )
    return d


def conv_distance(parent, child) -> float:
    """||W_child - W_parent|| / ||W_parent|| over all synthesis conv weights (4-D leaves) together."""
    num = den = 0.0
    pa = jax.tree_util.tree_leaves_with_path(parent.variables['params']['synthesis'])
    pb = dict(jax.tree_util.tree_leaves_with_path(child.variables['params']['synthesis']))
    for path, a in pa:
        if np.ndim(a) == 4:
            a = np.asarray(a, np.float64)
            b = np.asarray(pb[path], np.float64)
            num += float(np.sum((b - a) ** 2))
            den += float(np.sum(a**2))
    return float(np.sqrt(num / den)) if den > 0 else 0.0


# ----------------------------------------------------------------------------------------------------------
# Labellers.


@dataclasses.dataclass
class Labeller:
    """A checked labelling function with the Evaluator contract (see the module doc)."""

    fn: Callable
    domain: str | None = None
    resolution: int | None = None
    name: str = 'labeller'
    features_only: bool = False  # a feature extractor (FD, smoothness): no factors, nothing to read
    _checked: bool = False

    @property
    def expressed(self) -> np.ndarray:
        if self.domain in P.DOMAINS:
            return expressed_factors(self.domain)
        return np.ones(len(FACTOR_NAMES), bool)

    def readable(self) -> tuple:
        """Factors measured with this labeller: the shipped evaluators' `readable_factors`, or every expressed
        factor for a user's labeller."""
        if self.features_only:
            return ()
        if isinstance(self.fn, Evaluator) and self.domain in P.DOMAINS:
            try:
                return tuple(readable_factors(self.domain, self.resolution or 32))
            except FileNotFoundError:
                pass
        return tuple(n for n, k in zip(FACTOR_NAMES, self.expressed) if k and n != 'detail')

    def __call__(self, images, batch_size: int = 256) -> dict:
        x = np.asarray(images)
        outs = []
        for i in range(0, len(x), batch_size):
            o = self.fn(x[i : i + batch_size])
            if not self._checked:
                self._check(o, len(x[i : i + batch_size]), x.shape)
            outs.append({k: np.asarray(v) for k, v in o.items()})
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def _check(self, out, n, shape):
        if self.features_only:
            f = np.shape(out.get('features')) if isinstance(out, dict) else ()
            if len(f) != 2 or f[0] != n:
                raise AnalysisError(
                    f'{self.name}: a feature extractor must return {{"features": [N, D]}}; got '
                    f'{list(f) if f else type(out).__name__} for {n} images'
                )
            self._checked = True
            return
        if not isinstance(out, dict) or 'factors' not in out:
            raise AnalysisError(
                f'{self.name}: a labeller must return a dict with at least "factors" '
                f'[N, {len(FACTOR_NAMES)}]; got {type(out).__name__}'
                + (f' with keys {sorted(out)}' if isinstance(out, dict) else '')
            )
        want = {'factors': (n, len(FACTOR_NAMES))}
        f = np.shape(out['factors'])
        if f != want['factors']:
            raise AnalysisError(
                f'{self.name}: "factors" has shape {list(f)} for {n} images; expected '
                f'{[n, len(FACTOR_NAMES)]} (the factor order of alignjax.data.procedural.'
                f'FACTOR_NAMES)'
            )
        for k, nd in (('landmarks', 3), ('visible', 2), ('features', 2), ('mask_logits', 4)):
            if k in out:
                s = np.shape(out[k])
                if (
                    len(s) != nd
                    or s[0] != n
                    or (k == 'landmarks' and s[-1] != 2)
                    or (k == 'mask_logits' and tuple(s[1:3]) != tuple(shape[1:3]))
                ):
                    raise AnalysisError(
                        f'{self.name}: "{k}" has shape {list(s)} for {n} images of shape '
                        f'{list(shape[1:])}; see the labeller contract in alignjax.analysis'
                    )
        if 'landmarks' in out and 'visible' in out and np.shape(out['visible']) != np.shape(out['landmarks'])[:2]:
            raise AnalysisError(
                f'{self.name}: "visible" {list(np.shape(out["visible"]))} does not match '
                f'"landmarks" {list(np.shape(out["landmarks"]))}'
            )
        self._checked = True


def as_labeller(obj, domain: str | None = None, resolution: int | None = None, name: str | None = None) -> Labeller:
    """An Evaluator, a Labeller or a plain function -> a checked `Labeller`."""
    if isinstance(obj, Labeller):
        return obj
    if isinstance(obj, Evaluator):
        return Labeller(obj, obj.domain, obj.resolution, name or f'{obj.domain} evaluator')
    if not callable(obj):
        raise AnalysisError(
            f'{name or "labeller"}: expected an Evaluator or a function images -> dict, got {type(obj).__name__}'
        )
    return Labeller(obj, domain, resolution, name or getattr(obj, '__name__', 'labeller'))


def pixel_features(resolution: int, dim: int = 256, seed: int = 0) -> Labeller:
    """A weight-free feature extractor (a fixed random pixel projection) for runs without evaluators: FD and
    smoothness in pixel-projection space (not a perceptual distance)."""
    return Labeller(
        PixelProjection.create(resolution, dim, seed), None, resolution, 'pixel projection', features_only=True
    )


def check_labeller_fits(labeller: Labeller, gen, what: str):
    if labeller.resolution is not None and labeller.resolution != gen.resolution:
        raise AnalysisError(
            f'{what}: the {labeller.name} reads {labeller.resolution}x{labeller.resolution} '
            f'images, the generator makes {gen.resolution}x{gen.resolution}'
        )


# ----------------------------------------------------------------------------------------------------------
# Sampling.


def sample_z(n: int, z_dim: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randn(n, z_dim).astype(np.float32)


def to_uint8(img) -> np.ndarray:
    return np.asarray(jnp.clip(jnp.asarray(img) * 127.5 + 128, 0, 255).astype(jnp.uint8))


def synth(gen, ws, batch: int = 256, noise_mode: str = 'const') -> np.ndarray:
    """uint8 images [N, R, R, 3] of ws [N, num_ws, w_dim], in batches."""
    ws = np.asarray(ws, np.float32)
    out = [to_uint8(gen.synthesis(ws[i : i + batch], noise_mode=noise_mode)) for i in range(0, len(ws), batch)]
    return np.concatenate(out) if out else np.zeros((0, gen.resolution, gen.resolution, 3), np.uint8)


def synth_styles(gen, styles: dict, batch: int = 256) -> np.ndarray:
    n = len(next(iter(styles.values())))
    out = []
    for i in range(0, n, batch):
        s = {k: v[i : i + batch] for k, v in styles.items()}
        out.append(to_uint8(gen.synthesis_from_styles(s, noise_mode='const')))
    return np.concatenate(out)


def mapping(gen, z, psi: float = 1.0, batch: int = 1024) -> np.ndarray:
    z = np.asarray(z, np.float32)
    return np.concatenate(
        [np.asarray(gen.mapping(z[i : i + batch], truncation_psi=psi)) for i in range(0, len(z), batch)]
    )


def styles(gen, ws, batch: int = 1024) -> dict:
    parts = [gen.styles(jnp.asarray(ws[i : i + batch])) for i in range(0, len(ws), batch)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


# ----------------------------------------------------------------------------------------------------------
# Statistics.


def circ_diff(a, b):
    return (np.asarray(a) - np.asarray(b) + 0.5) % 1.0 - 0.5


def agreement(pred, ref, k: int) -> dict:
    """R^2 of `pred` against `ref` (1 - MSE / var(ref); circular for bg_hue) and Pearson r (circular
    correlation for bg_hue: of the unit vectors' components, averaged), for factor index k. glasses (a logit):
    r2 None, 'accuracy' = share of equal decisions (logit > 0)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if k == GLASSES:  # logits of two different labellers: their scales differ; score the decisions
        return dict(r2=None, accuracy=float(np.mean((pred > 0) == (ref > 0))), pearson=float(pearson(pred, ref)))
    if k == HUE:
        m = np.angle(np.mean(np.exp(2j * np.pi * ref))) / (2 * np.pi)
        cvar = np.mean(circ_diff(ref, m) ** 2)
        r2 = 1 - np.mean(circ_diff(pred, ref) ** 2) / cvar if cvar > 0 else np.nan
        a, b = 2 * np.pi * pred, 2 * np.pi * ref
        r = 0.5 * (pearson(np.cos(a), np.cos(b)) + pearson(np.sin(a), np.sin(b)))
        return dict(r2=float(r2), pearson=float(r))
    var = np.var(ref)
    r2 = 1 - np.mean((pred - ref) ** 2) / var if var > 0 else np.nan
    return dict(r2=float(r2), pearson=float(pearson(pred, ref)))


def pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return float(1.0 if np.allclose(a, b) and sa == sb else 0.0)
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return pearson(ra, rb)


def iou(a, b) -> float:
    a, b = set(map(int, a)), set(map(int, b))
    return len(a & b) / max(1, len(a | b))


def factor_value(out: dict, k: int) -> np.ndarray:
    """The factor k from a labeller output (glasses: the logit)."""
    return np.asarray(out['factors'])[:, k].astype(np.float64)


def jsonable(x: Any):
    """Dataclasses / numpy -> plain JSON types (NaN -> None)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {
            f.name: jsonable(getattr(x, f.name))
            for f in dataclasses.fields(x)
            if not f.name.startswith('_') and f.name != 'examples'
        }  # example images go to figures
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if not np.isfinite(x) else round(x, 6)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x
