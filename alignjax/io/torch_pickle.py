"""Stand-ins for the torch globals that ``torch.save`` pickles reference (no torch needed).

* torch tensors / parameters  -> ``np.ndarray`` (strided views of their storage, bounds checked)
* torch storages              -> :class:`NumpyStorage` (a 1-D numpy buffer)
* torch storage types, dtypes -> :class:`TorchStorageType` / :class:`TorchDType` markers

:data:`TORCH_GLOBALS` is their allow-list for :class:`alignjax.io.safe_pickle.RestrictedUnpickler`
(``torch.storage._load_from_bytes`` is added per file by :mod:`alignjax.io.torch_file`).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes  # a jax dependency
import numpy as np

__all__ = ['NUMPY_TO_STORAGE', 'NumpyStorage', 'TORCH_GLOBALS', 'TorchDType', 'TorchStorageType', 'tensor_from_storage']


# --------------------------------------------------------------------------------------------
# dtype tables

_BF16 = np.dtype(ml_dtypes.bfloat16)

# torch storage class name -> numpy dtype (None: cannot be represented)
_STORAGE_DTYPES: dict[str, Any] = {
    'FloatStorage': np.dtype(np.float32),
    'DoubleStorage': np.dtype(np.float64),
    'HalfStorage': np.dtype(np.float16),
    'BFloat16Storage': _BF16,
    'LongStorage': np.dtype(np.int64),
    'IntStorage': np.dtype(np.int32),
    'ShortStorage': np.dtype(np.int16),
    'CharStorage': np.dtype(np.int8),
    'ByteStorage': np.dtype(np.uint8),
    'BoolStorage': np.dtype(np.bool_),
    'ComplexFloatStorage': np.dtype(np.complex64),
    'ComplexDoubleStorage': np.dtype(np.complex128),
    'UntypedStorage': np.dtype(np.uint8),
}

# torch dtype attribute name -> numpy dtype
_TORCH_DTYPES: dict[str, Any] = {
    'float32': np.dtype(np.float32),
    'float': np.dtype(np.float32),
    'float64': np.dtype(np.float64),
    'double': np.dtype(np.float64),
    'float16': np.dtype(np.float16),
    'half': np.dtype(np.float16),
    'bfloat16': _BF16,
    'int64': np.dtype(np.int64),
    'long': np.dtype(np.int64),
    'int32': np.dtype(np.int32),
    'int': np.dtype(np.int32),
    'int16': np.dtype(np.int16),
    'short': np.dtype(np.int16),
    'int8': np.dtype(np.int8),
    'uint8': np.dtype(np.uint8),
    'bool': np.dtype(np.bool_),
    'complex64': np.dtype(np.complex64),
    'cfloat': np.dtype(np.complex64),
    'complex128': np.dtype(np.complex128),
    'cdouble': np.dtype(np.complex128),
}

# numpy dtype -> torch storage class name (for writing)
NUMPY_TO_STORAGE: dict[Any, str] = {
    dt: name for name, dt in _STORAGE_DTYPES.items() if dt is not None and name != 'UntypedStorage'
}


# --------------------------------------------------------------------------------------------
# stand-ins


class TorchStorageType:
    """Marker standing in for a ``torch.<X>Storage`` class."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f'torch.{self.name}'


class TorchDType:
    """Marker standing in for a ``torch.<dtype>`` object."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _TORCH_DTYPES[name]

    def __repr__(self) -> str:
        return f'torch.{self.name}'


class NumpyStorage:
    """A torch storage held as a flat, writable numpy buffer of ``numel`` elements."""

    __slots__ = ('array', 'location', 'key')

    def __init__(self, array: np.ndarray, location: str = 'cpu', key: str | None = None):
        self.array = array
        self.location = location
        self.key = key

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        return self.numel

    def __repr__(self) -> str:
        return f'NumpyStorage(dtype={self.dtype}, numel={self.numel}, key={self.key!r})'


# ---- tensors


def tensor_from_storage(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
    """View ``storage`` as a strided array, with the bounds checked (torch semantics)."""
    if not isinstance(storage, NumpyStorage):
        raise TypeError(f'tensor storage is {type(storage).__name__}, expected a torch storage')
    shape = tuple(int(s) for s in size)
    strides = tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(shape) != len(strides):
        raise ValueError(f'tensor size {shape} and stride {strides} differ in rank')
    if offset < 0 or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise ValueError(f'negative tensor size/stride/offset: size={shape} stride={strides} offset={offset}')
    buf = storage.array
    if 0 in shape:
        return np.zeros(shape, dtype=buf.dtype)
    extent = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + 1
    if extent > buf.size:
        raise ValueError(
            f'tensor of size {shape}, stride {strides}, offset {offset} needs {extent} elements '
            f'but its storage holds {buf.size}'
        )
    item = buf.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        buf[offset:], shape=shape, strides=tuple(s * item for s in strides), writeable=True
    )


def _rebuild_tensor(storage, storage_offset, size, stride):
    return tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, np.ndarray):
        raise TypeError(f'parameter data is {type(data).__name__}, expected a tensor')
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _rebuild_from_type_v2(func, new_type, args, state):
    # func was itself resolved through the allow-list
    return func(*args)


def _torch_size(values=()):
    if not isinstance(values, (list, tuple)):
        raise TypeError(f'torch.Size of {type(values).__name__}')
    return tuple(int(v) for v in values)


def _torch_device(*args):
    return ':'.join(str(a) for a in args)


# (module, name) -> stand-in.  Nothing here is imported from torch.
TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter_with_state,
    ('torch._tensor', '_rebuild_from_type_v2'): _rebuild_from_type_v2,
    ('torch', 'Size'): _torch_size,
    ('torch', 'device'): _torch_device,
}
TORCH_GLOBALS.update({('torch', n): TorchStorageType(n) for n, dt in _STORAGE_DTYPES.items() if dt is not None})
TORCH_GLOBALS.update({('torch', n): TorchDType(n) for n, dt in _TORCH_DTYPES.items() if dt is not None})
