"""The feature-extractor protocol and the extractors that need no weights.

An extractor is any object with

    .resolution   int (the image size it needs) or None (any size)
    __call__(images) -> dict with 'features': float32 [N, D]

where images are uint8 [N, H, W, 3] or float [N, H, W, 3] in [-1, 1] (NHWC). The domain evaluators
(`alignjax.eval.load_evaluator(domain, resolution)`) and `alignjax.metrics.inception.InceptionV3` satisfy it;
so does a user's own labelling network.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['FeatureExtractor', 'PixelProjection', 'check_images', 'to_unit_range']


@runtime_checkable
class FeatureExtractor(Protocol):
    resolution: int | None

    def __call__(self, images) -> dict: ...


def to_unit_range(images):
    """uint8 [N, H, W, 3] -> float32 in [-1, 1]; float images are taken as already in [-1, 1]."""
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 127.5 - 1.0
    return images.astype(jnp.float32)


def check_images(images, extractor, what: str = 'images') -> None:
    """Raise ValueError unless images [N, H, W, 3] fit `extractor.resolution` (None: any size)."""
    shape = tuple(np.shape(images))
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f'{what} must be [N, H, W, 3] (NHWC RGB), got shape {shape}')
    res = getattr(extractor, 'resolution', None)
    if res is not None and shape[1:3] != (res, res):
        raise ValueError(
            f'{what} are {shape[1]}x{shape[2]} but the feature extractor '
            f'{extractor_name(extractor)} expects {res}x{res}'
        )


def extractor_name(extractor) -> str:
    name = getattr(extractor, 'name', None)
    if isinstance(name, str):
        return name
    dom = getattr(extractor, 'domain', None)
    return f'evaluator({dom})' if dom else type(extractor).__name__


@jax.jit
def _project(proj, images):
    x = to_unit_range(images).reshape(images.shape[0], -1)
    return jnp.matmul(x, proj, precision='highest') / np.sqrt(proj.shape[0])


@flax.struct.dataclass
class PixelProjection:
    """Fixed random projection of the pixels (seeded): a weight-free sanity baseline for the metrics plumbing,
    not a perceptual distance. features: [N, dim]."""

    proj: Any
    resolution: int = flax.struct.field(pytree_node=False)
    name: str = flax.struct.field(pytree_node=False, default='pix')

    @classmethod
    def create(cls, resolution: int, dim: int = 256, seed: int = 0) -> PixelProjection:
        proj = np.random.RandomState(seed).randn(resolution * resolution * 3, dim).astype(np.float32)
        return cls(jnp.asarray(proj), int(resolution))

    def __call__(self, images):
        check_images(images, self)
        return {'features': _project(self.proj, jnp.asarray(images))}
