"""Metrics of a generator against real images, by name (as NVlabs `calc_metrics.py`).

    res = compute_metrics(gen, 'proc:toons?n=20000', 'fd_eval10k,kid_eval10k,pr_eval10k')
    # {'fd_eval10k': ..., 'kid_eval10k': ..., 'pr_eval10k_precision': ..., 'pr_eval10k_recall': ...}

Names are `<metric>_<extractor><N>[k]`: metric fd | kid | pr, extractor eval (the domain evaluator, or the
`extractor=` you pass) | inception (FID Inception-v3, needs `inception=` weights) | pix (a fixed random pixel
projection: plumbing checks only), N images (a `k` suffix multiplies by 1000); `fid<N>[k]` is `fd_inception<N>[k]`.
Every metric uses N generated images (z from `RandomState(seed)`, psi 1, per-image random noise maps, outputs
quantised to uint8 as NVlabs) and the first N images of the real set; metrics of one extractor share the
features (a smaller N takes a prefix). Real features are cached in memory per (dataset, resolution, extractor, N).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.data import make_dataset, parse_spec
from alignjax.errors import AlignjaxError
from alignjax.eval.evaluator import load_evaluator
from alignjax.metrics import distances
from alignjax.metrics.extractors import PixelProjection, check_images, extractor_name
from alignjax.metrics.inception import load_inception

__all__ = [
    'MetricsError',
    'MetricSpec',
    'parse_metric',
    'parse_metrics',
    'compute_metrics',
    'generator_features',
    'real_features',
    'generate_images',
    'get_extractor',
    'METRIC_HELP',
]

KINDS = ('fd', 'kid', 'pr')
EXTRACTORS = ('eval', 'inception', 'pix')
METRIC_HELP = (
    'fd_eval<N>, kid_eval<N>, pr_eval<N>, fd_inception<N>, kid_inception<N>, pr_inception<N>, '
    'fid<N>, fd_pix<N>, kid_pix<N>, pr_pix<N> (N images, e.g. 2000 or 2k; e.g. fd_eval10k, fid50k)'
)


class MetricsError(AlignjaxError, ValueError):
    """Bad metric request or input: the message says what and where. (Also a `ValueError`, as it always was.)"""


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str  # as requested, e.g. 'fd_eval10k'
    kind: str  # fd | kid | pr
    extractor: str  # eval | inception | pix
    n: int  # images per set


def parse_metric(name: str) -> MetricSpec:
    s = name.strip()
    m = re.fullmatch(r'(fd|kid|pr)_(eval|inception|pix)(\d+)(k?)', s)
    if m:
        kind, ext, num, k = m.groups()
    else:
        m = re.fullmatch(r'fid(\d+)(k?)', s)
        if not m:
            raise MetricsError(f'unknown metric {name!r}; valid metrics: {METRIC_HELP}')
        kind, ext, (num, k) = 'fd', 'inception', m.groups()
    n = int(num) * (1000 if k else 1)
    if n < 2:
        raise MetricsError(f'metric {name!r} asks for {n} image(s); it needs at least 2')
    return MetricSpec(s, kind, ext, n)


def parse_metrics(metrics) -> list[MetricSpec]:
    """'a,b' or ['a', 'b'] -> [MetricSpec], duplicates dropped."""
    names = metrics.split(',') if isinstance(metrics, str) else list(metrics)
    out, seen = [], set()
    for nm in names:
        if nm.strip() and nm.strip() not in seen:
            seen.add(nm.strip())
            out.append(parse_metric(nm))
    if not out:
        raise MetricsError(f'no metrics given; valid metrics: {METRIC_HELP}')
    return out


# ----------------------------------------------------------------------------------------------------------
# Generated images.


@functools.partial(jax.jit, static_argnames=('shapes',))
def noise_maps(key, idx, shapes):
    """Per-image noise maps: image i gets normal(fold_in(key, i)) over all layers at once (one draw, split in
    layer order), so its maps depend on neither the batch nor its position in it. idx: [B] uint32 image indices;
    shapes: ((layer, (h, w)), ...) -> {layer: [B, h, w]}."""
    sizes = [h * w for _, (h, w) in shapes]
    flat = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (sum(sizes),)))(idx)
    out, start = {}, 0
    for (name, (h, w)), size in zip(shapes, sizes):
        out[name] = flat[:, start : start + size].reshape(-1, h, w)
        start += size
    return out


@jax.jit
def _synthesize_uint8(gen, z, noise):
    img = gen.synthesis(gen.mapping(z), noise_mode='const', noise=noise)
    return jnp.clip(img * 127.5 + 128, 0, 255).astype(jnp.uint8)  # as NVlabs: truncation, not rounding


def generate_images(
    gen,
    n: int,
    batch_size: int = 64,
    seed: int = 0,
    noise_mode: str = 'random',
    progress: bool = False,
    desc: str = 'generating',
):
    """Yield uint8 [B, H, W, 3] batches of `n` images of `gen` (psi 1). z = RandomState(seed).randn(n, z_dim)
    drawn in order and per-image noise (`noise_maps`): the images do not depend on batch_size."""
    from tqdm.auto import tqdm

    if gen.config.c_dim:
        raise MetricsError('conditional generators are not supported by the metrics yet (c_dim > 0)')
    if noise_mode not in ('random', 'const'):
        raise MetricsError(f"noise_mode must be 'random' or 'const', got {noise_mode!r}")
    rnd = np.random.RandomState(seed)
    key = jax.random.key(seed)
    shapes = tuple(sorted(gen.noise_shapes.items()))
    bs = max(1, min(batch_size, n))
    with tqdm(total=n, desc=desc, unit='img', disable=not progress, leave=False) as bar:
        for s in range(0, n, bs):
            b = min(bs, n - s)
            z = np.zeros((bs, gen.z_dim), np.float32)
            z[:b] = rnd.randn(b, gen.z_dim)
            noise = None
            if noise_mode == 'random':
                noise = noise_maps(key, jnp.arange(s, s + bs, dtype=jnp.uint32), shapes)
            img = _synthesize_uint8(gen, jnp.asarray(z), noise)
            bar.update(b)
            yield img[:b] if b < bs else img


def _features(extractor, batch, pad_to: int) -> np.ndarray:
    """Run the extractor on a batch padded to `pad_to` rows (one compile per size); [B, D] float32."""
    b = len(batch)
    if b < pad_to:
        batch = jnp.concatenate([jnp.asarray(batch), jnp.repeat(jnp.asarray(batch)[-1:], pad_to - b, 0)])
    out = extractor(batch)
    if not isinstance(out, Mapping) or 'features' not in out:
        raise MetricsError(
            f"feature extractor {extractor_name(extractor)} returned {type(out).__name__} without a 'features' entry"
        )
    f = np.asarray(out['features'], np.float32)
    if f.ndim != 2 or len(f) != pad_to:
        raise MetricsError(
            f'feature extractor {extractor_name(extractor)} returned features of shape {f.shape}, '
            f'expected [{pad_to}, D]'
        )
    return f[:b]


def generator_features(
    gen,
    extractors: Mapping[str, Any],
    n: int,
    batch_size: int = 64,
    seed: int = 0,
    noise_mode: str = 'random',
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """{key: [n, D] features} of n generated images, every extractor fed the same batches."""
    for key, ext in extractors.items():
        res = getattr(ext, 'resolution', None)
        if res is not None and res != gen.resolution:
            raise MetricsError(
                f'the generator makes {gen.resolution}x{gen.resolution} images but the feature '
                f'extractor {extractor_name(ext)} ({key}) is for {res}x{res}: checkpoint and '
                f'evaluator resolutions differ'
            )
    stats = {k: distances.FeatureStats(capture_all=True, capture_mean_cov=False) for k in extractors}
    bs = max(1, min(batch_size, n))
    for img in generate_images(gen, n, bs, seed, noise_mode, progress, desc='generated images'):
        for k, ext in extractors.items():
            stats[k].append(_features(ext, img, bs))
    return {k: st.get_all() for k, st in stats.items()}


# ----------------------------------------------------------------------------------------------------------
# Real images.

_REAL_CACHE: dict = {}  # (dataset key, id(extractor)) -> (extractor, features [n, D])


def _dataset_key(real):
    spec = getattr(real, 'spec', None)
    if isinstance(spec, str):
        return (spec, int(real.resolution), bool(getattr(real, 'xflip', False)), getattr(real, 'max_images', None))
    return None


def _iter_real(real, n: int, batch_size: int):
    if isinstance(real, (np.ndarray, jax.Array)):
        for s in range(0, n, batch_size):
            yield np.asarray(real[s : s + batch_size])
        return
    for s in range(0, n, batch_size):
        yield np.stack([real[i]['image'] for i in range(s, min(s + batch_size, n))])


def _real_name(real) -> str:
    spec = getattr(real, 'spec', None)
    return repr(spec) if isinstance(spec, str) else f'the real images ({type(real).__name__})'


def real_features(
    real, extractor, n: int, batch_size: int = 64, progress: bool = False, cache: bool = True
) -> np.ndarray:
    """[n, D] features of the first n real images (an `ImageDataset` or a uint8/[-1, 1] array [N, H, W, 3])."""
    from tqdm.auto import tqdm

    have = len(real)
    if have < n:
        raise MetricsError(f'{_real_name(real)} has {have} images but {n} were requested')
    key = _dataset_key(real) if cache else None
    if key is not None:
        hit = _REAL_CACHE.get((key, id(extractor)))
        if hit is not None and hit[0] is extractor and len(hit[1]) >= n:
            return hit[1][:n]
    bs = max(1, min(batch_size, n))
    st = distances.FeatureStats(capture_all=True, capture_mean_cov=False)
    with tqdm(total=n, desc='real images', unit='img', disable=not progress, leave=False) as bar:
        for batch in _iter_real(real, n, bs):
            check_images(batch, extractor, f'real images of {_real_name(real)}')
            st.append(_features(extractor, batch, bs))
            bar.update(len(batch))
    feats = st.get_all()
    if key is not None:
        _REAL_CACHE[(key, id(extractor))] = (extractor, feats)
    return feats


def clear_cache() -> None:
    _REAL_CACHE.clear()


# ----------------------------------------------------------------------------------------------------------
# Extractors by name.

_EXTRACTORS: dict = {}


def get_extractor(kind: str, resolution: int, *, evaluator=None, inception=None, domain: str | None = None):
    """The extractor for `kind` ('eval' | 'inception' | 'pix'); cached, so real features are reused.

    eval: `evaluator` (an extractor object, or a domain/path for `alignjax.eval.load_evaluator`), else `domain`.
    inception: `inception` (an extractor object or the path of pytorch-fid's weights).
    """
    if kind == 'pix':
        key = ('pix', resolution)
        if key not in _EXTRACTORS:
            _EXTRACTORS[key] = PixelProjection.create(resolution)
        return _EXTRACTORS[key]
    if kind == 'inception':
        if inception is None:
            raise MetricsError(
                'FID / inception metrics need the Inception weights: pass --inception PATH '
                "(pytorch-fid's pt_inception-2015-12-05-6726825d.pth; nothing is downloaded)"
            )
        if not isinstance(inception, (str, bytes)) and not hasattr(inception, '__fspath__'):
            return inception
        return load_inception(inception)
    if kind != 'eval':
        raise MetricsError(f'unknown feature extractor {kind!r}; choose from {EXTRACTORS}')
    if evaluator is not None and not isinstance(evaluator, str) and not hasattr(evaluator, '__fspath__'):
        return evaluator
    what = evaluator if evaluator is not None else domain
    if what is None:
        raise MetricsError(
            'eval metrics need a domain evaluator: pass --evaluator DOMAIN|PATH (proc: datasets '
            'default to their own domain)'
        )
    key = ('eval', str(what), resolution)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = load_evaluator(str(what), resolution)
    return _EXTRACTORS[key]


# ----------------------------------------------------------------------------------------------------------
# The entry point.


def _proc_domain(real) -> str | None:
    spec = getattr(real, 'spec', real if isinstance(real, str) else None)
    if isinstance(spec, str) and spec.startswith('proc:'):
        return parse_spec(spec).target
    return None


def compute_metrics(
    gen,
    real,
    metrics: str | Iterable[str],
    extractor=None,
    *,
    inception=None,
    batch_size: int = 64,
    seed: int = 0,
    noise_mode: str = 'random',
    progress: bool = False,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    cache: bool = True,
) -> dict[str, float]:
    """Compute `metrics` (names, see the module docstring) of `gen` against `real`; plain floats.

    gen: a `Generator`, or generated images uint8 / [-1, 1] [N, H, W, 3]. real: a dataset spec (opened at the
    generator's resolution), an `ImageDataset`, or an image array. extractor: the 'eval' extractor (an object
    with `.resolution` and `__call__(images) -> {'features'}`, or a domain/path for `alignjax.eval`); default:
    the procedural dataset's own domain. inception: `InceptionV3` or the path of pytorch-fid's weights.
    Results: fd / kid -> {name: value}; pr -> {name + '_precision': p, name + '_recall': r}.
    """
    specs = parse_metrics(metrics)
    is_gen = hasattr(gen, 'mapping') and hasattr(gen, 'synthesis')
    if is_gen:
        resolution = int(gen.resolution)
    else:
        gen = np.asarray(gen)
        check_images(gen, None, 'generated images')
        resolution = int(gen.shape[1])
    if isinstance(real, str):
        real = make_dataset(real, resolution)
    real_res = getattr(real, 'resolution', None)
    if real_res is None:
        check_images(real, None, 'real images')
        real_res = int(np.shape(real)[1])
    if real_res != resolution:
        raise MetricsError(
            f'{_real_name(real)} is at {real_res}x{real_res} but the generated images are {resolution}x{resolution}'
        )
    exts = {}
    for sp in specs:
        if sp.extractor not in exts:
            exts[sp.extractor] = get_extractor(
                sp.extractor, resolution, evaluator=extractor, inception=inception, domain=_proc_domain(real)
            )
    need = {k: max(sp.n for sp in specs if sp.extractor == k) for k in exts}
    n_max = max(need.values())
    if len(real) < n_max:
        asks = max(specs, key=lambda sp: sp.n)
        raise MetricsError(f'{_real_name(real)} has {len(real)} images but {asks.name} needs {asks.n}')
    if not is_gen and len(gen) < n_max:
        raise MetricsError(f'{len(gen)} generated images given but {max(specs, key=lambda s: s.n).name} needs {n_max}')
    for ext in exts.values():
        res = getattr(ext, 'resolution', None)
        if res is not None and res != resolution:
            raise MetricsError(
                f'the images are {resolution}x{resolution} but the feature extractor '
                f'{extractor_name(ext)} is for {res}x{res}: checkpoint and evaluator resolutions '
                f'differ'
            )

    if is_gen:
        gfeats = generator_features(gen, exts, n_max, batch_size, seed, noise_mode, progress)
    else:
        gfeats = {k: real_features(gen, ext, n_max, batch_size, progress, cache=False) for k, ext in exts.items()}
    rfeats = {k: real_features(real, ext, need[k], batch_size, progress, cache) for k, ext in exts.items()}

    out: dict[str, float] = {}
    for sp in specs:
        r, g = rfeats[sp.extractor][: sp.n], gfeats[sp.extractor][: sp.n]
        if sp.kind == 'fd':
            out[sp.name] = float(distances.fd_from_features(r, g))
        elif sp.kind == 'kid':
            out[sp.name] = float(distances.kid(r, g, kid_subsets, kid_subset_size, seed))
        else:
            pr = distances.precision_recall(r, g, pr_k)
            out[f'{sp.name}_precision'] = float(pr['precision'])
            out[f'{sp.name}_recall'] = float(pr['recall'])
    return out
