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
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np

from alignjax.errors import CheckpointError

__all__ = [
    'ARGPARSE_GLOBALS',
    'BASE_GLOBALS',
    'CheckpointError',
    'DNNLIB_GLOBALS',
    'EasyDict',
    'Namespace',
    'PARSE_ERRORS',
    'RestrictedUnpickler',
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


def _np_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise TypeError(f'refusing to reconstruct numpy subtype {subtype!r}')
    return np.ndarray.__new__(np.ndarray, shape, dtype)


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
    arr = np.frombuffer(bytearray(buf), dtype=dtype)
    return arr.reshape(shape, order=order if order in ('C', 'F') else 'C')


# ---- builtins / misc


def _codecs_encode(obj, encoding='utf-8', errors='strict'):
    # protocol<=2 pickles of bytes objects: _codecs.encode('...', 'latin1')
    if not isinstance(obj, str) or str(encoding).lower().replace('-', '') not in ('latin1', 'utf8'):
        raise TypeError('unsupported _codecs.encode call')
    return obj.encode(encoding)


def _copyreg_reconstructor(cls, base, state):
    # protocol 0/1 object pickles; cls and base were resolved through the allow-list
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
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('numpy.core.multiarray', '_reconstruct'): _np_reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _np_reconstruct,
    ('numpy.core.multiarray', 'scalar'): _np_scalar,
    ('numpy._core.multiarray', 'scalar'): _np_scalar,
    ('numpy.core.numeric', '_frombuffer'): _np_frombuffer,
    ('numpy._core.numeric', '_frombuffer'): _np_frombuffer,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'slice'): slice,
    ('builtins', 'complex'): complex,
    ('builtins', 'bytearray'): bytearray,
    ('builtins', 'object'): object,
    ('builtins', 'dict'): dict,
    ('builtins', 'list'): list,
    ('builtins', 'tuple'): tuple,
    ('__builtin__', 'set'): set,
    ('__builtin__', 'frozenset'): frozenset,
    ('__builtin__', 'object'): object,
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

    def __init__(self, file: BinaryIO, *, path: Any, allowed: Globals = BASE_GLOBALS,
                 persistent_load: Callable[[Any], Any] | None = None):
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


def unpickle(file: BinaryIO, *, path: Any, allowed: Globals = BASE_GLOBALS,
             persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """One restricted ``load`` from ``file``; parse failures become :class:`CheckpointError`."""
    try:
        return RestrictedUnpickler(file, path=path, allowed=allowed, persistent_load=persistent_load).load()
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
