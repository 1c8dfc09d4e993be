"""What every format reader shares: the canonical :class:`RawCheckpoint`, constants and small helpers."""

from __future__ import annotations

import collections
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.nn.arch import DEFAULT_RESAMPLE_FILTER

ORBAX_MARKER = 'alignjax_config.json'
NET_NAMES = ('G', 'G_ema', 'D')
DEFAULT_MAPPING_LR_MUL = 0.01
# the layer names and indices of the architecture table do not depend on the channel counts
ANY_CHANNELS: Mapping[int, int] = collections.defaultdict(int)


class UnsupportedNetwork(CheckpointError):
    """One network of a file is well formed but not one alignjax can build (e.g. a StyleGAN3 generator, a
    non-lrelu activation). The file's other networks still load: `infer.finish` leaves it out and says so
    (``RawCheckpoint.skipped``, a note); a file whose generators are all unsupported is refused with this error."""

    def __init__(self, message: str, net: str):
        super().__init__(message)
        self.net = net


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
    # {net: {NVlabs key: (the file's label, the file's key)}} where the file names it differently (set by the
    # readers through the tags `_Src.get` puts on every tensor it hands out)
    names: dict[str, dict[str, tuple]] = field(default_factory=dict)
    # {net: why} for networks of the file that were left out (`UnsupportedNetwork`)
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for net, sd in self.nets.items():
            for k, v in sd.items():
                origin = origin_of(v)
                if origin is not None:
                    if origin != (net, k):
                        self.names.setdefault(net, {})[k] = origin
                    sd[k] = v.view(np.ndarray)

    def where(self, net: str, key: str) -> str:
        """``key`` of network ``net`` as the file names it: "g_ema key 'convs.0.conv.weight' (NVlabs ...)"."""
        return _where(self.names.get(net, {}).get(key), net, key)

    def nonfinite(self) -> list[str]:
        """One line per tensor holding NaN or Inf, named as the file names it."""
        out = []
        for net, sd in self.nets.items():
            for k, v in sd.items():
                v = np.asarray(v)
                if np.issubdtype(v.dtype, np.inexact) and not np.isfinite(v).all():
                    bad = int(v.size - np.count_nonzero(np.isfinite(v)))
                    out.append(f'{self.where(net, k)}: {bad} of {v.size} values are NaN/Inf')
        return out

    @property
    def source(self) -> str:
        """Deprecated name of :attr:`format` (``Checkpoint.source`` is where a checkpoint came from)."""
        warnings.warn(
            "RawCheckpoint.source is deprecated: use .format (the file's format) or .path",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.format


def default_resample_filter(taps=DEFAULT_RESAMPLE_FILTER) -> np.ndarray:
    """The 2-D resampling filter buffer that stylegan2-ada-pytorch registers (``setup_filter``)."""
    f = np.asarray(taps, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    return (f / f.sum()).astype(np.float32)


# ---- the file's own names, carried by the tensors themselves


class _Tagged(np.ndarray):
    """A view of a file's tensor that remembers the file's name for it, ``origin = (label, key)``, through views,
    transposes and arithmetic (so a reader can convert freely and errors still name the file's key)."""

    def __array_finalize__(self, obj):
        self.origin = getattr(obj, 'origin', None)


def tag(value: Any, label: str | None, key: str) -> np.ndarray:
    """``value`` as an array tagged with the file's name for it (kept if it already has one)."""
    if origin_of(value) is not None:
        return value
    a = np.asarray(value).view(_Tagged)
    a.origin = (label, key)
    return a


def origin_of(value: Any) -> tuple | None:
    return value.origin if isinstance(value, _Tagged) else None


def _where(origin: tuple | None, label: str, key: str) -> str:
    if origin is None or tuple(origin) == (label, key):
        return f"{label} key '{key}'"
    file_label, file_key = origin
    return (f"{file_label} key '{file_key}'" if file_label else f"'{file_key}'") + f" (NVlabs {label} '{key}')"


def key_desc(value: Any, label: str, key: str) -> str:
    """How errors name ``key`` of ``label``: the file's own name where ``value`` carries one."""
    return _where(origin_of(value), label, key)


def _f32(x: Any) -> np.ndarray:
    out = np.array(x, dtype=np.float32, copy=True, order='C')
    origin = origin_of(x)
    if origin is not None:  # RawCheckpoint strips the tag (into .names)
        out = out.view(_Tagged)
        out.origin = origin
    return out


def _shape(x: Any) -> tuple:
    return tuple(int(s) for s in np.shape(x))


def _is_array(x: Any) -> bool:
    """ndarray, numpy scalar, or an array-like with shape and dtype (e.g. a jax.Array)."""
    return isinstance(x, (np.ndarray, np.generic)) or (
        hasattr(x, '__array__') and hasattr(x, 'shape') and hasattr(x, 'dtype')
    )


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
        """The tensor, tagged with its name in the file (``label``, ``key``) unless it already has one."""
        if key not in self.sd:
            raise CheckpointError(f"{self.path}: {self.label} is missing key '{key}'")
        value = self.sd[key]
        where = key_desc(value, self.label, key)
        if not _is_array(value):
            raise CheckpointError(f'{self.path}: {where} is {type(value).__name__}, expected a tensor')
        value = tag(value, self.label, key)
        if shape is not None and _shape(value) != tuple(shape):
            raise CheckpointError(f'{self.path}: {where} has shape {_shape(value)}, expected {tuple(shape)}')
        self.used.add(key)
        return value

    def unused(self) -> list[str]:
        """Keys never read. A ``.../bias`` left over whose ``.../weight`` is absent (and nothing else of that layer
        was read) means the weight is missing: that is what is reported, not an unexpected bias."""
        left = [k for k in self.sd if k not in self.used]
        for k in left:
            for sep in ('.', '/'):
                stem, _, last = k.rpartition(sep)
                if (
                    stem
                    and last == 'bias'
                    and f'{stem}{sep}weight' not in self.sd
                    and not any(u.startswith(stem + sep) for u in self.used)
                ):
                    raise CheckpointError(
                        f"{self.path}: {self.label} is missing key '{stem}{sep}weight' (its '{k}' is there)"
                    )
        return left


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
