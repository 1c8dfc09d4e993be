"""Datasets for alignjax: one spec for image folders, NVlabs zips, TFDS and the
procedural aligned-domain benchmark, served through a resumable grain loader.

>>> ds = make_dataset("proc:faces?n=1000", 64)
>>> loader = make_loader(ds, batch_size=32, seed=0, shard_index=0, shard_count=1)
>>> it = iter(loader); batch = next(it); state = it.get_state()

See docs/data.md.
"""

from alignjax.data._image import (
    BadImageError,
    DatasetError,
    DatasetNotFoundError,
    EmptyDatasetError,
    decode_image,
    to_rgb,
)
from alignjax.data.loader import EpochShuffleSampler, make_loader
from alignjax.data.sources import DatasetSpec, ImageDataset, make_dataset, parse_spec

__all__ = [
    'BadImageError',
    'DatasetError',
    'DatasetNotFoundError',
    'DatasetSpec',
    'EmptyDatasetError',
    'EpochShuffleSampler',
    'ImageDataset',
    'decode_image',
    'make_dataset',
    'make_loader',
    'parse_spec',
    'to_rgb',
]
