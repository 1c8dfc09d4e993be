"""Restricted, torch-free unpickling of checkpoint files.

Checkpoints from the StyleGAN2 ecosystem are Python pickles (NVlabs network pickles, the
``data.pkl`` inside ``torch.save`` archives, TensorFlow-era NVlabs pickles).  Unpickling them
with :func:`pickle.load` runs arbitrary code, so this module never does that.  Instead,
:class:`RestrictedUnpickler` resolves globals through an explicit allow-list that the caller passes:
``{(module, name): stand-in}``.  Nothing on a list is imported: every entry maps to a small local
*stand-in* that rebuilds the data with numpy only.  This module knows only plain Python / numpy data
(:data:`BASE_GLOBALS`) and two generic containers; each format brings its own globals:

* torch tensors, storages, dtypes  -- :data:`alignjax.io.torch_file.TORCH_GLOBALS`
* ``torch_utils.persistence`` modules -- :data:`alignjax.io.formats.nvlabs.NVLABS_GLOBALS`
* ``dnnlib.tflib.network.Network``    -- :data:`alignjax.io.formats.tf.TF_GLOBALS`
* ``argparse.Namespace`` (:class:`Namespace`), ``dnnlib.EasyDict`` (:class:`EasyDict`): plain containers

Any other global raises :class:`CheckpointError` naming ``module.name`` and the file.

Memory is bounded by what the file holds, not by what it claims: every stand-in that allocates by an argument
(``bytearray(n)``, numpy arrays, containers built from other objects, torch storages) charges the bytes to the
load's :class:`AllocationBudget` (``2 x file size + 16 MiB``) *before* allocating, and a charge over it raises
:class:`CheckpointError` naming the file and what asked for the memory.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.budget import ALLOC_SLACK, AllocationBudget, _stream_size, allocation_budget, charge

__all__ = [
    'ALLOC_SLACK',
    'ARGPARSE_GLOBALS',
    'AllocationBudget',
    'BASE_GLOBALS',
    'CheckpointError',
    'DNNLIB_GLOBALS',
    'EasyDict',
    'Namespace',
    'PARSE_ERRORS',
    'RestrictedUnpickler',
    'allocation_budget',
    'charge',
    'corrupt_error',
    'load_pickle',
    'loads_pickle',
    'unpickle',
]

Globals = Mapping[tuple[str, str], Any]


def corrupt_error(path: Any, exc: BaseException | None = None, what: str = '') -> CheckpointError:
    """The uniform error for files that cannot be parsed."""
    detail = f' ({type(exc).__name__}: {exc})' if exc is not None else ''
    where = f' {what}' if what else ''
    return CheckpointError(f'{path}{where} is truncated or corrupt{detail}')


# --------------------------------------------------------------------------------------------
# generic stand-ins


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` / ``dnnlib.EasyDict``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Namespace:
    """Stand-in for ``argparse.Namespace``."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Namespace) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return 'Namespace(' + ', '.join(f'{k}={v!r}' for k, v in vars(self).items()) + ')'


# ---- numpy


class _Marker:
    """A global that may only be passed to other stand-ins (never called, never a class for NEWOBJ)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NDARRAY = _Marker('numpy.ndarray')  # np.ndarray itself would let NEWOBJ allocate any shape


def _np_reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY:
        raise TypeError(f'refusing to reconstruct numpy subtype {subtype!r}')
    if not isinstance(dtype, (np.dtype, str, bytes)):
        raise TypeError('numpy array without a dtype')
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise TypeError('refusing an object-dtype numpy array')
    shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    charge(math.prod(shape) * dtype.itemsize if all(n >= 0 for n in shape) else -1, f'a numpy array {shape}')
    return np.ndarray.__new__(_PickledArray, shape, dtype)


class _PickledArray(np.ndarray):
    """An array being unpickled: its ``__setstate__`` (the BUILD opcode) refuses object dtypes, whose numpy
    ``__setstate__`` trusts the pickled shape (a wrong one crashed the process). :func:`unpickle` turns these back
    into plain arrays."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise TypeError('malformed numpy array state')
        dtype = state[-3]
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise TypeError('refusing an object-dtype numpy array')
        super().__setstate__(state)


def _plain_arrays(obj: Any, seen: dict) -> Any:
    """``obj`` with every _PickledArray replaced by a plain ndarray view (containers and stand-ins' __dict__)."""
    if isinstance(obj, _PickledArray):
        return obj.view(np.ndarray)
    if id(obj) in seen:
        return seen[id(obj)]
    seen[id(obj)] = obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _plain_arrays(v, seen)
    elif isinstance(obj, list):
        obj[:] = [_plain_arrays(v, seen) for v in obj]
    elif isinstance(obj, tuple):
        seen[id(obj)] = new = tuple(_plain_arrays(v, seen) for v in obj)
        return new if any(a is not b for a, b in zip(new, obj)) else obj
    elif isinstance(getattr(obj, '__dict__', None), dict) and not isinstance(obj, type):
        _plain_arrays(obj.__dict__, seen)
    return obj


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype):
        raise TypeError('numpy scalar without a dtype')
    if dtype.hasobject:
        return data
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError('numpy scalar payload is not bytes')
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _np_frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise TypeError('refusing object-dtype numpy buffer')
    if not isinstance(buf, (bytes, bytearray)):
        raise TypeError('numpy buffer payload is not bytes')
    charge(len(buf), f'a numpy array {tuple(shape) if isinstance(shape, (tuple, list)) else shape}')
    arr = np.frombuffer(bytearray(buf), dtype=dtype)
    return arr.reshape(shape, order=order if order in ('C', 'F') else 'C')


# ---- builtins / misc


def _codecs_encode(obj, encoding='utf-8', errors='strict'):
    # protocol<=2 pickles of bytes objects: _codecs.encode('...', 'latin1')
    if not isinstance(obj, str) or str(encoding).lower().replace('-', '') not in ('latin1', 'utf8'):
        raise TypeError('unsupported _codecs.encode call')
    charge(len(obj) * (1 if str(encoding).lower().startswith('latin') else 4), '_codecs.encode')
    return obj.encode(encoding)


# ---- builtins that allocate by their argument: only from objects the pickle built, charged to the budget

_CONTAINERS = (list, tuple, set, frozenset, dict, collections.OrderedDict)


def _sized(kind: str, args: tuple, per_item: int) -> tuple:
    if len(args) > 1 or (args and not isinstance(args[0], _CONTAINERS)):
        raise TypeError(f'builtins.{kind} of {type(args[0]).__name__ if args else "?"} is not supported')
    charge(per_item * (len(args[0]) if args else 0), f'builtins.{kind}')
    return args


def _budgeted(kind: str, make, per_item: int):
    """A stand-in for the container type `make`: charges the budget per item before building it."""

    def build(*args, **kwargs):
        return make(*_sized(kind, args, per_item), **kwargs)

    return build


_tuple, _list = _budgeted('tuple', tuple, 8), _budgeted('list', list, 8)
_set, _frozenset = _budgeted('set', set, 64), _budgeted('frozenset', frozenset, 64)
_dict, _ordered_dict = _budgeted('dict', dict, 64), _budgeted('OrderedDict', collections.OrderedDict, 96)


def _bytearray(*args):
    if not args:
        return bytearray()
    src = args[0]
    if isinstance(src, bool) or not isinstance(src, (int, bytes, bytearray, str, list, tuple)):
        raise TypeError(f'builtins.bytearray of {type(src).__name__} is not supported')
    n = src if isinstance(src, int) else len(src)
    charge(n if n >= 0 else -1, f'builtins.bytearray({n})' if isinstance(src, int) else 'builtins.bytearray')
    return bytearray(*args)


# the stand-ins that replace container types, for _copyreg_reconstructor's `base`
_BASES = {_tuple: tuple, _list: list, _set: set, _dict: dict}


def _copyreg_reconstructor(cls, base, state):
    # protocol 0/1 object pickles; cls and base were resolved through the allow-list
    base = _BASES.get(base, base)
    if base is object:
        obj = object.__new__(cls)
    elif base in (dict, list, tuple, set):
        obj = base.__new__(cls, state)
        if base in (dict, list, set) and state is not None:
            base.__init__(obj, state)
    else:
        raise TypeError(f'unsupported copyreg base {base!r}')
    return obj


def _copyreg_newobj(cls, *args):
    return cls.__new__(cls, *args)


# --------------------------------------------------------------------------------------------
# the allow-lists

# (module, name) -> stand-in for plain Python / numpy data.  Nothing here is imported.
BASE_GLOBALS: dict[tuple[str, str], Any] = {
    ('collections', 'OrderedDict'): _ordered_dict,
    ('numpy', 'ndarray'): _NDARRAY,
    ('numpy', 'dtype'): np.dtype,
    ('numpy.core.multiarray', '_reconstruct'): _np_reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _np_reconstruct,
    ('numpy.core.multiarray', 'scalar'): _np_scalar,
    ('numpy._core.multiarray', 'scalar'): _np_scalar,
    ('numpy.core.numeric', '_frombuffer'): _np_frombuffer,
    ('numpy._core.numeric', '_frombuffer'): _np_frombuffer,
    ('builtins', 'set'): _set,
    ('builtins', 'frozenset'): _frozenset,
    ('builtins', 'slice'): slice,
    ('builtins', 'complex'): complex,
    ('builtins', 'bytearray'): _bytearray,
    ('builtins', 'object'): object,
    ('builtins', 'dict'): _dict,
    ('builtins', 'list'): _list,
    ('builtins', 'tuple'): _tuple,
    ('__builtin__', 'set'): _set,
    ('__builtin__', 'frozenset'): _frozenset,
    ('__builtin__', 'object'): object,
    ('__builtin__', 'bytearray'): _bytearray,
    ('__builtin__', 'complex'): complex,
    ('_codecs', 'encode'): _codecs_encode,
    ('copyreg', '_reconstructor'): _copyreg_reconstructor,
    ('copy_reg', '_reconstructor'): _copyreg_reconstructor,
    ('copyreg', '__newobj__'): _copyreg_newobj,
}
ARGPARSE_GLOBALS = {('argparse', 'Namespace'): Namespace}
DNNLIB_GLOBALS = {('dnnlib.util', 'EasyDict'): EasyDict, ('dnnlib', 'EasyDict'): EasyDict}

# aliases used only for error messages (pickle writes os.system as posix.system)
_MODULE_ALIASES = {'posix': 'os', 'nt': 'os'}


def _describe_global(module: str, name: str) -> str:
    full = f'{module}.{name}'
    if module in _MODULE_ALIASES:
        full += f' (i.e. {_MODULE_ALIASES[module]}.{name})'
    return full


# --------------------------------------------------------------------------------------------
# the unpickler


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves the globals in ``allowed`` to their stand-ins.

    ``path`` is used in error messages.  ``persistent_load`` (optional) resolves persistent
    ids (torch storages); without it any persistent id is an error.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        path: Any,
        allowed: Globals = BASE_GLOBALS,
        persistent_load: Callable[[Any], Any] | None = None,
    ):
        super().__init__(file, encoding='latin1')
        self._path = path
        self._allowed = allowed
        self._persistent_load_fn = persistent_load

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise CheckpointError(
                f"{self._path}: refusing to load global '{_describe_global(str(module), str(name))}' "
                'which is not on the checkpoint allow-list (the file may be malicious or of an '
                'unsupported kind)'
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D401 - pickle API
        if self._persistent_load_fn is None:
            raise pickle.UnpicklingError(f'unexpected persistent id {pid!r} in a plain pickle')
        return self._persistent_load_fn(pid)


# exceptions that mean "this file is not a well-formed pickle / archive"
PARSE_ERRORS = (
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    struct.error,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    UnicodeDecodeError,
    MemoryError,
    RecursionError,
    OSError,
)


def unpickle(
    file: BinaryIO, *, path: Any, allowed: Globals = BASE_GLOBALS, persistent_load: Callable[[Any], Any] | None = None
) -> Any:
    """One restricted ``load`` from ``file``; parse failures become :class:`CheckpointError`. Allocations are
    charged to the current :func:`allocation_budget` (one for ``file``'s size when none is current)."""
    try:
        with allocation_budget(path, _stream_size(file)):
            obj = RestrictedUnpickler(file, path=path, allowed=allowed, persistent_load=persistent_load).load()
            return _plain_arrays(obj, {})
    except CheckpointError:
        raise
    except PARSE_ERRORS as exc:
        raise corrupt_error(path, exc) from exc


def load_pickle(path: str | os.PathLike, allowed: Globals = BASE_GLOBALS) -> Any:
    """Load a plain pickle file with the restricted unpickler (globals: ``allowed``)."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CheckpointError(f'{path}: cannot read checkpoint ({exc})') from exc
    if size == 0:
        raise CheckpointError(f'{path} is empty (0 bytes): truncated or corrupt')
    with open(path, 'rb') as f:
        return unpickle(f, path=path, allowed=allowed)


def loads_pickle(data: bytes, *, name: str = '<bytes>', allowed: Globals = BASE_GLOBALS) -> Any:
    """Restricted unpickling of an in-memory pickle."""
    if not data:
        raise CheckpointError(f'{name} is empty: truncated or corrupt')
    return unpickle(io.BytesIO(data), path=name, allowed=allowed)
