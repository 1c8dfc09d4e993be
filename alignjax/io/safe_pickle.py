"""Restricted, torch-free unpickling of checkpoint files.

Checkpoints from the StyleGAN2 ecosystem are Python pickles (NVlabs network pickles, the
``data.pkl`` inside ``torch.save`` archives, TensorFlow-era NVlabs pickles).  Unpickling them
with :func:`pickle.load` runs arbitrary code, so this module never does that.  Instead,
:class:`RestrictedUnpickler` resolves globals through an explicit allow-list.  Nothing on the
list is imported: every entry maps to a small local *stand-in* that rebuilds the data with
numpy only:

* torch tensors / parameters       -> ``np.ndarray``
* torch storages                   -> :class:`NumpyStorage` (a 1-D numpy buffer)
* torch storage types / dtypes     -> :class:`TorchStorageType` / :class:`TorchDType` markers
* ``torch_utils.persistence`` modules (stylegan2-ada-pytorch) -> :class:`PersistentModule`
  (holds the pickled ``__dict__``; ``state_dict()`` flattens parameters and buffers)
* ``dnnlib.tflib.network.Network`` -> :class:`TFNetwork` (holds the pickled state)
* ``dnnlib.util.EasyDict``         -> :class:`EasyDict`
* ``argparse.Namespace``           -> :class:`Namespace`

Any other global raises :class:`CheckpointError` naming ``module.name`` and the file.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Callable

import numpy as np

__all__ = [
    "CheckpointError",
    "RestrictedUnpickler",
    "NumpyStorage",
    "TorchStorageType",
    "TorchDType",
    "PersistentModule",
    "TFNetwork",
    "EasyDict",
    "Namespace",
    "load_pickle",
    "corrupt_error",
    "ALLOWED_GLOBALS",
]


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, unsupported or unsafe.

    The message always names the file and, where relevant, the offending key, global or shape.
    """


def corrupt_error(path: Any, exc: BaseException | None = None, what: str = "") -> CheckpointError:
    """The uniform error for files that cannot be parsed."""
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    where = f" {what}" if what else ""
    return CheckpointError(f"{path}{where} is truncated or corrupt{detail}")


# --------------------------------------------------------------------------------------------
# dtype tables

def _bfloat16():
    try:
        import ml_dtypes  # shipped with jax

        return np.dtype(ml_dtypes.bfloat16)
    except Exception:  # pragma: no cover - ml_dtypes is a jax dependency
        return None


_BF16 = _bfloat16()

# torch storage class name -> numpy dtype (None: cannot be represented)
_STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": _BF16,
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),
}

# torch dtype attribute name -> numpy dtype
_TORCH_DTYPES: dict[str, Any] = {
    "float32": np.dtype(np.float32), "float": np.dtype(np.float32),
    "float64": np.dtype(np.float64), "double": np.dtype(np.float64),
    "float16": np.dtype(np.float16), "half": np.dtype(np.float16),
    "bfloat16": _BF16,
    "int64": np.dtype(np.int64), "long": np.dtype(np.int64),
    "int32": np.dtype(np.int32), "int": np.dtype(np.int32),
    "int16": np.dtype(np.int16), "short": np.dtype(np.int16),
    "int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
    "complex64": np.dtype(np.complex64), "cfloat": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128), "cdouble": np.dtype(np.complex128),
}

# numpy dtype -> torch storage class name (for writing)
NUMPY_TO_STORAGE: dict[Any, str] = {
    dt: name for name, dt in _STORAGE_DTYPES.items() if dt is not None and name != "UntypedStorage"
}


# --------------------------------------------------------------------------------------------
# stand-ins


class TorchStorageType:
    """Marker standing in for a ``torch.<X>Storage`` class."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class TorchDType:
    """Marker standing in for a ``torch.<dtype>`` object."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _TORCH_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class NumpyStorage:
    """A torch storage held as a flat, writable numpy buffer of ``numel`` elements."""

    __slots__ = ("array", "location", "key")

    def __init__(self, array: np.ndarray, location: str = "cpu", key: str | None = None):
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
        return f"NumpyStorage(dtype={self.dtype}, numel={self.numel}, key={self.key!r})"


class PersistentModule:
    """Stand-in for a ``torch_utils.persistence`` object (e.g. a stylegan2-ada-pytorch network).

    ``state`` is the pickled ``__dict__`` of the original ``torch.nn.Module`` (``_parameters``,
    ``_buffers``, ``_modules``, ``_init_kwargs``, plain attributes such as ``z_dim``).  The
    module's source code stored in the pickle is kept as text only and never executed.
    """

    def __init__(self, class_name: str, state: dict, version: Any = None, module_src: str | None = None):
        self.class_name = class_name
        self.state = state if isinstance(state, dict) else {}
        self.version = version
        self.module_src = module_src

    # convenient attribute access to the pickled __dict__ (G.z_dim, G.synthesis, ...)
    def __getattr__(self, name: str) -> Any:
        if name in ("class_name", "state", "version", "module_src") or name.startswith("__"):
            raise AttributeError(name)
        state = self.__dict__.get("state", {})
        for group in ("_parameters", "_buffers", "_modules"):
            sub = state.get(group)
            if isinstance(sub, dict) and name in sub:
                return sub[name]
        if name in state:
            return state[name]
        raise AttributeError(f"{self.__dict__.get('class_name', '?')} has no attribute {name!r}")

    @property
    def init_args(self) -> tuple:
        args = self.state.get("_init_args", ())
        return tuple(args) if isinstance(args, (list, tuple)) else ()

    @property
    def init_kwargs(self) -> dict:
        kw = self.state.get("_init_kwargs", {})
        return dict(kw) if isinstance(kw, dict) else {}

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        mods = self.state.get("_modules") or {}
        for name, mod in mods.items():
            if isinstance(mod, PersistentModule):
                yield from mod.named_modules(f"{prefix}{name}.")

    def state_dict(self, prefix: str = "") -> "collections.OrderedDict[str, np.ndarray]":
        """Flat ``{name: ndarray}`` in ``torch.nn.Module.state_dict()`` order and naming."""
        out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        params = self.state.get("_parameters") or {}
        for name, value in params.items():
            if value is not None:
                out[prefix + name] = value
        buffers = self.state.get("_buffers") or {}
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for name, value in buffers.items():
            if value is not None and name not in skip:
                out[prefix + name] = value
        mods = self.state.get("_modules") or {}
        for name, mod in mods.items():
            if isinstance(mod, PersistentModule):
                out.update(mod.state_dict(prefix + name + "."))
        return out

    def __repr__(self) -> str:
        return f"PersistentModule({self.class_name})"


def _reconstruct_persistent_obj(meta: Any) -> Any:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj`` (never execs source)."""
    if not isinstance(meta, dict):
        raise TypeError("persistent object metadata is not a dict")
    if meta.get("type") != "class":
        raise TypeError(f"unsupported persistent object type {meta.get('type')!r}")
    return PersistentModule(
        class_name=str(meta.get("class_name")),
        state=meta.get("state") or {},
        version=meta.get("version"),
        module_src=meta.get("module_src"),
    )


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network`` (TensorFlow StyleGAN/StyleGAN2/ADA pickles).

    After unpickling: ``name``, ``static_kwargs``, ``components`` ({name: TFNetwork}),
    ``variables`` ({var_name: ndarray}, insertion order kept), ``build_func_name``.
    """

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise TypeError("TF network state is not a dict")
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get("name", ""))

    @property
    def static_kwargs(self) -> dict:
        kw = self.state.get("static_kwargs") or {}
        return dict(kw) if isinstance(kw, dict) else {}

    @property
    def components(self) -> dict:
        comps = self.state.get("components") or {}
        return dict(comps) if isinstance(comps, dict) else {}

    @property
    def build_func_name(self) -> str | None:
        return self.state.get("build_func_name")

    @property
    def variables(self) -> "collections.OrderedDict[str, np.ndarray]":
        out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        for item in self.state.get("variables") or []:
            name, value = item
            out[str(name)] = value
        return out

    def __repr__(self) -> str:
        return f"TFNetwork({self.name})"


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
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


# ---- tensors


def tensor_from_storage(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
    """View ``storage`` as a strided array, with the bounds checked (torch semantics)."""
    if not isinstance(storage, NumpyStorage):
        raise TypeError(f"tensor storage is {type(storage).__name__}, expected a torch storage")
    shape = tuple(int(s) for s in size)
    strides = tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(shape) != len(strides):
        raise ValueError(f"tensor size {shape} and stride {strides} differ in rank")
    if offset < 0 or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise ValueError(f"negative tensor size/stride/offset: size={shape} stride={strides} offset={offset}")
    buf = storage.array
    if 0 in shape:
        return np.zeros(shape, dtype=buf.dtype)
    extent = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + 1
    if extent > buf.size:
        raise ValueError(
            f"tensor of size {shape}, stride {strides}, offset {offset} needs {extent} elements "
            f"but its storage holds {buf.size}"
        )
    item = buf.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        buf[offset:], shape=shape, strides=tuple(s * item for s in strides), writeable=True
    )


def _rebuild_tensor(storage, storage_offset, size, stride):
    return tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, np.ndarray):
        raise TypeError(f"parameter data is {type(data).__name__}, expected a tensor")
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _rebuild_from_type_v2(func, new_type, args, state):
    # func was itself resolved through the allow-list
    return func(*args)


def _torch_size(values=()):
    return tuple(int(v) for v in values)


def _torch_device(*args):
    return ":".join(str(a) for a in args)


# ---- numpy


def _np_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise TypeError(f"refusing to reconstruct numpy subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype):
        raise TypeError("numpy scalar without a dtype")
    if dtype.hasobject:
        return data
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("numpy scalar payload is not bytes")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _np_frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise TypeError("refusing object-dtype numpy buffer")
    arr = np.frombuffer(bytearray(buf), dtype=dtype)
    return arr.reshape(shape, order=order if order in ("C", "F") else "C")


# ---- builtins / misc


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # protocol<=2 pickles of bytes objects: _codecs.encode('...', 'latin1')
    if not isinstance(obj, str) or str(encoding).lower().replace("-", "") not in ("latin1", "utf8"):
        raise TypeError("unsupported _codecs.encode call")
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
        raise TypeError(f"unsupported copyreg base {base!r}")
    return obj


def _copyreg_newobj(cls, *args):
    return cls.__new__(cls, *args)


# --------------------------------------------------------------------------------------------
# the allow-list

# (module, name) -> stand-in.  Nothing here is imported from torch/dnnlib/argparse.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("argparse", "Namespace"): Namespace,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "object"): object,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "object"): object,
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("copy_reg", "_reconstructor"): _copyreg_reconstructor,
    ("copyreg", "__newobj__"): _copyreg_newobj,
}
for _name in _STORAGE_DTYPES:
    if _STORAGE_DTYPES[_name] is not None:
        ALLOWED_GLOBALS[("torch", _name)] = TorchStorageType(_name)
for _name in _TORCH_DTYPES:
    if _TORCH_DTYPES[_name] is not None:
        ALLOWED_GLOBALS[("torch", _name)] = TorchDType(_name)

# aliases used only for error messages (pickle writes os.system as posix.system)
_MODULE_ALIASES = {"posix": "os", "nt": "os"}


def _describe_global(module: str, name: str) -> str:
    full = f"{module}.{name}"
    if module in _MODULE_ALIASES:
        full += f" (i.e. {_MODULE_ALIASES[module]}.{name})"
    return full


# --------------------------------------------------------------------------------------------
# the unpickler


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves allow-listed globals to local stand-ins.

    ``path`` is used in error messages.  ``persistent_load`` (optional) resolves persistent
    ids (torch storages); without it any persistent id is an error.  ``torch.storage._load_from_bytes``
    payloads are parsed by :func:`alignjax.io.torch_file.load_torch_bytes` (restricted as well).
    """

    def __init__(self, file: BinaryIO, *, path: Any, persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._persistent_load_fn = persistent_load

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        key = (module, name)
        if key == ("torch.storage", "_load_from_bytes"):
            return self._load_from_bytes
        try:
            return ALLOWED_GLOBALS[key]
        except (KeyError, TypeError):
            raise CheckpointError(
                f"{self._path}: refusing to load global '{_describe_global(str(module), str(name))}' "
                "which is not on the checkpoint allow-list (the file may be malicious or of an "
                "unsupported kind)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D401 - pickle API
        if self._persistent_load_fn is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} in a plain pickle")
        return self._persistent_load_fn(pid)

    def _load_from_bytes(self, data: Any) -> Any:
        """Stand-in for ``torch.storage._load_from_bytes``: the bytes are a ``torch.save`` file."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("torch.storage._load_from_bytes payload is not bytes")
        from .torch_file import load_torch_bytes  # local import: torch_file imports this module

        return load_torch_bytes(bytes(data), name=f"{self._path} (embedded torch storage)")


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


def unpickle(file: BinaryIO, *, path: Any, persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """One restricted ``load`` from ``file``; parse failures become :class:`CheckpointError`."""
    try:
        return RestrictedUnpickler(file, path=path, persistent_load=persistent_load).load()
    except CheckpointError:
        raise
    except PARSE_ERRORS as exc:
        raise corrupt_error(path, exc) from exc


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a plain pickle file (e.g. an NVlabs network pickle) with the restricted unpickler."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from exc
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): truncated or corrupt")
    with open(path, "rb") as f:
        return unpickle(f, path=path)


def loads_pickle(data: bytes, *, name: str = "<bytes>") -> Any:
    """Restricted unpickling of an in-memory pickle."""
    if not data:
        raise CheckpointError(f"{name} is empty: truncated or corrupt")
    return unpickle(io.BytesIO(data), path=name)
