"""What every format reader shares: the canonical :class:`RawCheckpoint`, constants and small helpers."""

from __future__ import annotations

import collections
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from alignjax.errors import CheckpointError

ORBAX_MARKER = 'alignjax_config.json'
NET_NAMES = ('G', 'G_ema', 'D')
DEFAULT_MAPPING_LR_MUL = 0.01
# the layer names and indices of the architecture table do not depend on the channel counts
ANY_CHANNELS: Mapping[int, int] = collections.defaultdict(int)


@dataclass
class RawCheckpoint:
    """A checkpoint in canonical form.

    nets:   ``{'G' | 'G_ema' | 'D': {name: ndarray}}`` -- stylegan2-ada-pytorch state dicts
            (float32, C-contiguous, independent copies), in ``state_dict()`` order.
    config: architecture hyper-parameters inferred from the tensors (see :func:`infer_config`).
    notes:  human-readable remarks (e.g. "latent_avg absent: ...").
    format: the file's format, 'nvlabs' | 'rosinality' | 'tf'.
    extra:  anything else worth keeping (``augment_p``, ``init_kwargs``, ``training_set_kwargs``).
    path:   the file it was read from.
    """

    nets: dict[str, dict[str, np.ndarray]]
    config: dict
    notes: list[str] = field(default_factory=list)
    format: str = ''
    extra: dict = field(default_factory=dict)
    path: str = ''

    @property
    def source(self) -> str:
        """Deprecated name of :attr:`format` (``Checkpoint.source`` is where a checkpoint came from)."""
        warnings.warn("RawCheckpoint.source is deprecated: use .format (the file's format) or .path",
                      DeprecationWarning, stacklevel=2)
        return self.format


def default_resample_filter(taps=(1, 3, 3, 1)) -> np.ndarray:
    """The 2-D resampling filter buffer that stylegan2-ada-pytorch registers (``setup_filter``)."""
    f = np.asarray(taps, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    return (f / f.sum()).astype(np.float32)


def _f32(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float32, copy=True, order='C')


def _shape(x: Any) -> tuple:
    return tuple(int(s) for s in np.shape(x))


def _is_array(x: Any) -> bool:
    """ndarray, numpy scalar, or an array-like with shape and dtype (e.g. a jax.Array)."""
    return isinstance(x, (np.ndarray, np.generic)) or (
        hasattr(x, '__array__') and hasattr(x, 'shape') and hasattr(x, 'dtype'))


class _Src:
    """Read-only view of a source state dict that reports missing keys / wrong shapes clearly
    and remembers what was consumed."""

    def __init__(self, sd: Mapping[str, Any], path: str, label: str):
        self.sd = sd
        self.path = path
        self.label = label
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.sd

    def get(self, key: str, shape: tuple | None = None) -> np.ndarray:
        if key not in self.sd:
            raise CheckpointError(f"{self.path}: {self.label} is missing key '{key}'")
        value = self.sd[key]
        if not _is_array(value):
            raise CheckpointError(f"{self.path}: {self.label} key '{key}' is {type(value).__name__}, expected a tensor")
        value = np.asarray(value)
        if shape is not None and _shape(value) != tuple(shape):
            raise CheckpointError(
                f"{self.path}: {self.label} key '{key}' has shape {_shape(value)}, expected {tuple(shape)}"
            )
        self.used.add(key)
        return value

    def unused(self) -> list[str]:
        return [k for k in self.sd if k not in self.used]


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.fullmatch(k))})


def _plain(x: Any) -> Any:
    """Plain python copy of pickled kwargs (EasyDict -> dict, numpy scalars -> python)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x) if isinstance(x, list) else tuple(_plain(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (str, int, float, bool, type(None))):
        return x
    return repr(x)


