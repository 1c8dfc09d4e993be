"""Reading and writing ``torch.save`` files without PyTorch.

Supported on input:

* the zip format (torch >= 1.6): ``<archive>/data.pkl`` (pickle whose tensors refer to storages
  through persistent ids ``('storage', <StorageType>, key, location, numel)``), the raw storages in
  ``<archive>/data/<key>`` and a ``<archive>/byteorder`` record;
* the legacy format (``_use_new_zipfile_serialization=False``, also what torch uses for pickled
  storages): a sequence of pickles -- magic number, protocol version, sys_info, the object (with
  persistent ids ``('storage', <StorageType>, root_key, location, numel, view_metadata)``), the list
  of storage keys -- followed, for each key, by an int64 element count and the raw bytes;
* plain pickles holding tensors whose storages are pickled through
  ``torch.storage._load_from_bytes`` (NVlabs network pickles).

Every pickle goes through :class:`alignjax.io.safe_pickle.RestrictedUnpickler`; tensors come back
as numpy arrays (bfloat16 as ``ml_dtypes.bfloat16``).

On output, :func:`save_torch` writes the zip format with protocol-2 pickles that only use
``torch._utils._rebuild_tensor_v2``, ``torch.<X>Storage``, ``collections.OrderedDict`` and plain
containers, so ``torch.load(path, weights_only=True)`` accepts it.
"""

from __future__ import annotations

import collections
import io
import os
import secrets
import struct
import tempfile
import zipfile
from typing import Any, BinaryIO

import numpy as np

from .safe_pickle import (
    NUMPY_TO_STORAGE,
    PARSE_ERRORS,
    CheckpointError,
    NumpyStorage,
    TorchDType,
    TorchStorageType,
    corrupt_error,
    unpickle,
)

__all__ = ["load_torch", "load_torch_bytes", "save_torch", "is_torch_zip", "is_torch_legacy"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_MAGIC_LE = MAGIC_NUMBER.to_bytes(10, "little")
_ZIP_MAGIC = b"PK\x03\x04"


# --------------------------------------------------------------------------------------------
# sniffing


def is_torch_zip(head: bytes) -> bool:
    return head.startswith(_ZIP_MAGIC)


def is_torch_legacy(head: bytes) -> bool:
    """True when ``head`` starts with the pickled torch magic number (legacy format)."""
    body = head[2:] if head[:1] == b"\x80" else head
    return body[:2] == b"\x8a\x0a" and body[2:12] == _MAGIC_LE


def _is_tar(f: BinaryIO) -> bool:
    pos = f.tell()
    try:
        f.seek(257)
        return f.read(5) == b"ustar"
    finally:
        f.seek(pos)


# --------------------------------------------------------------------------------------------
# loading


def load_torch(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file (zip or legacy) or a pickle with embedded torch storages.

    Tensors are returned as numpy arrays.  Like torch tensors, arrays that share a storage are views
    of the same buffer (copy them before mutating if that matters).  Raises :class:`CheckpointError`
    for anything malformed, truncated or not on the allow-list.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from exc
    with f:
        return _load_stream(f, name=path, size=size)


def load_torch_bytes(data: bytes, *, name: str = "<bytes>") -> Any:
    """:func:`load_torch` for an in-memory file."""
    return _load_stream(io.BytesIO(data), name=name, size=len(data))


def _load_stream(f: BinaryIO, *, name: str, size: int) -> Any:
    if size == 0:
        raise CheckpointError(f"{name} is empty (0 bytes): truncated or corrupt")
    head = f.read(64)
    f.seek(0)
    if is_torch_zip(head):
        return _load_zip(f, name=name, size=size)
    if is_torch_legacy(head):
        return _load_legacy(f, name=name, size=size)
    if _is_tar(f):
        raise CheckpointError(f"{name}: the tar-based torch.save format (torch < 0.4) is not supported")
    return unpickle(f, path=name)


def _storage_dtype(storage_type: Any, name: str) -> np.dtype:
    if isinstance(storage_type, (TorchStorageType, TorchDType)) and storage_type.dtype is not None:
        return storage_type.dtype
    raise CheckpointError(f"{name}: unsupported torch storage type {storage_type!r}")


def _typename(pid: Any, name: str) -> str:
    if not isinstance(pid, tuple) or not pid:
        raise CheckpointError(f"{name}: malformed persistent id {pid!r}")
    typename = pid[0]
    if isinstance(typename, bytes):
        typename = typename.decode("ascii", "replace")
    return str(typename)


def _swap_to_native(arr: np.ndarray) -> None:
    if arr.dtype.itemsize > 1:
        arr.byteswap(inplace=True)


def _load_zip(f: BinaryIO, *, name: str, size: int) -> Any:
    try:
        zf = zipfile.ZipFile(f)
        names = zf.namelist()
    except PARSE_ERRORS as exc:
        raise corrupt_error(name, exc) from exc
    with zf:
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{name}: zip file without a torch 'data.pkl' record (not a torch.save file)")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            try:
                byteorder = zf.read(prefix + "byteorder").decode("ascii").strip()
            except PARSE_ERRORS as exc:
                raise corrupt_error(name, exc) from exc
            if byteorder not in ("little", "big"):
                raise CheckpointError(f"{name}: unknown byteorder record {byteorder!r}")
        raw_cache: dict[str, bytearray] = {}
        storages: dict[tuple[str, str], NumpyStorage] = {}

        def persistent_load(pid: Any) -> Any:
            typename = _typename(pid, name)
            if typename != "storage" or len(pid) < 5:
                raise CheckpointError(f"{name}: unsupported persistent id {pid!r}")
            storage_type, key, location, numel = pid[1:5]
            dtype = _storage_dtype(storage_type, name)
            key = str(key)
            cache_key = (key, dtype.str if dtype.names is None else repr(dtype))
            if cache_key in storages:
                return storages[cache_key]
            record = f"{prefix}data/{key}"
            if key not in raw_cache:
                if record not in names:
                    raise CheckpointError(f"{name}: storage record '{record}' is missing (truncated or corrupt)")
                raw_cache[key] = bytearray(zf.read(record))
            raw = raw_cache[key]
            numel = int(numel)
            nbytes = numel * dtype.itemsize
            if numel < 0 or len(raw) < nbytes:
                raise CheckpointError(
                    f"{name}: storage '{record}' holds {len(raw)} bytes, expected {nbytes} "
                    f"({numel} x {dtype}) (truncated or corrupt)"
                )
            arr = np.frombuffer(raw, dtype=dtype, count=numel)
            if byteorder == "big":
                arr = arr.copy()
                _swap_to_native(arr)
            st = NumpyStorage(arr, location=str(location), key=key)
            storages[cache_key] = st
            return st

        try:
            with zf.open(prefix + "data.pkl") as pf:
                return unpickle(pf, path=name, persistent_load=persistent_load)
        except CheckpointError:
            raise
        except PARSE_ERRORS as exc:
            raise corrupt_error(name, exc) from exc


def _load_legacy(f: BinaryIO, *, name: str, size: int) -> Any:
    magic = unpickle(f, path=name)
    if magic != MAGIC_NUMBER:
        raise CheckpointError(f"{name}: invalid torch magic number (not a torch.save file or corrupt)")
    protocol = unpickle(f, path=name)
    if protocol != PROTOCOL_VERSION:
        raise CheckpointError(f"{name}: unsupported legacy torch protocol version {protocol!r}")
    sys_info = unpickle(f, path=name)
    little = True
    if isinstance(sys_info, dict):
        little = bool(sys_info.get("little_endian", True))

    roots: dict[str, NumpyStorage] = {}
    views: dict[str, NumpyStorage] = {}

    def persistent_load(pid: Any) -> Any:
        typename = _typename(pid, name)
        if typename != "storage" or len(pid) != 6:
            raise CheckpointError(f"{name}: unsupported persistent id {pid!r}")
        storage_type, root_key, location, numel, view_metadata = pid[1:]
        dtype = _storage_dtype(storage_type, name)
        root_key = str(root_key)
        numel = int(numel)
        if root_key not in roots:
            if numel < 0 or numel * dtype.itemsize > size:
                raise CheckpointError(
                    f"{name}: storage '{root_key}' claims {numel} x {dtype} but the file has only "
                    f"{size} bytes (truncated or corrupt)"
                )
            roots[root_key] = NumpyStorage(np.empty(numel, dtype=dtype), location=str(location), key=root_key)
        root = roots[root_key]
        if view_metadata is None:
            return root
        view_key, offset, view_size = view_metadata
        view_key, offset, view_size = str(view_key), int(offset), int(view_size)
        if view_key not in views:
            if offset < 0 or view_size < 0 or offset + view_size > root.numel:
                raise CheckpointError(f"{name}: storage view '{view_key}' is out of bounds")
            views[view_key] = NumpyStorage(root.array[offset:offset + view_size], location=str(location),
                                           key=view_key)
        return views[view_key]

    result = unpickle(f, path=name, persistent_load=persistent_load)
    keys = unpickle(f, path=name)
    if not isinstance(keys, list):
        raise corrupt_error(name, what="(storage key list)")
    try:
        for key in keys:
            key = str(key)
            if key not in roots:
                raise CheckpointError(f"{name}: storage '{key}' is listed but never referenced (corrupt)")
            st = roots[key]
            header = f.read(8)
            if len(header) != 8:
                raise corrupt_error(name, what=f"(storage '{key}' missing)")
            (numel,) = struct.unpack("<q" if little else ">q", header)
            if numel != st.numel:
                raise CheckpointError(
                    f"{name}: storage '{key}' has {numel} elements on disk, expected {st.numel} (corrupt)"
                )
            buf = st.array.view(np.uint8)
            got = f.readinto(memoryview(buf)) if buf.size else 0
            if got != buf.size:
                raise corrupt_error(name, what=f"(storage '{key}': {got} of {buf.size} bytes)")
            if not little:
                _swap_to_native(st.array)
    except CheckpointError:
        raise
    except PARSE_ERRORS as exc:
        raise corrupt_error(name, exc) from exc
    return result


# --------------------------------------------------------------------------------------------
# saving: a small protocol-2 pickle writer for weights-only payloads


class _Writer:
    def __init__(self, path: str):
        self.path = path
        self.out = io.BytesIO()
        self.storages: list[tuple[str, np.ndarray]] = []
        self._storage_keys: dict[int, tuple[str, str, int, np.ndarray]] = {}
        self._active: set[int] = set()

    def w(self, b: bytes) -> None:
        self.out.write(b)

    def global_(self, module: str, name: str) -> None:
        self.w(b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n")

    def str_(self, s: str) -> None:
        data = s.encode("utf-8", "surrogatepass")
        self.w(b"X" + struct.pack("<I", len(data)) + data)

    def int_(self, v: int) -> None:
        if 0 <= v < 0x100:
            self.w(b"K" + bytes([v]))
        elif 0 <= v < 0x10000:
            self.w(b"M" + struct.pack("<H", v))
        elif -0x80000000 <= v < 0x80000000:
            self.w(b"J" + struct.pack("<i", v))
        else:
            nbytes = (v.bit_length() + 8) // 8
            data = v.to_bytes(nbytes, "little", signed=True)
            self.w(b"\x8a" + bytes([len(data)]) + data)

    def ordered_dict_new(self) -> None:
        self.global_("collections", "OrderedDict")
        self.w(b")R")

    def tensor(self, arr: np.ndarray, where: str) -> None:
        entry = self._storage_keys.get(id(arr))
        if entry is None:
            native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder not in ("=", "|") else arr.dtype
            storage_name = NUMPY_TO_STORAGE.get(native)
            if storage_name is None:
                raise CheckpointError(f"{self.path}: cannot save array '{where}' of dtype {arr.dtype} as a torch tensor")
            little = native.newbyteorder("<") if native.itemsize > 1 else native
            data = np.ascontiguousarray(arr, dtype=little).reshape(-1)
            key = str(len(self.storages))
            self.storages.append((key, data))
            entry = (key, storage_name, int(data.size), arr)  # arr kept alive so its id() stays unique
            self._storage_keys[id(arr)] = entry
        key, storage_name, numel = entry[:3]
        shape = arr.shape
        strides = []
        acc = 1
        for n in reversed(shape):
            strides.append(acc)
            acc *= max(int(n), 1)
        strides = tuple(reversed(strides))
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.w(b"(")
        # persistent id of the storage
        self.w(b"(")
        self.str_("storage")
        self.global_("torch", storage_name)
        self.str_(key)
        self.str_("cpu")
        self.int_(numel)
        self.w(b"tQ")
        self.int_(0)  # storage_offset
        self.tuple_items([int(n) for n in shape])
        self.tuple_items(list(strides))
        self.w(b"\x89")  # requires_grad False
        self.ordered_dict_new()  # backward hooks
        self.w(b"tR")

    def tuple_items(self, items: list[int]) -> None:
        if not items:
            self.w(b")")
            return
        self.w(b"(")
        for v in items:
            self.int_(v)
        self.w(b"t")

    def obj(self, o: Any, where: str = "") -> None:
        if o is None:
            self.w(b"N")
        elif o is True:
            self.w(b"\x88")
        elif o is False:
            self.w(b"\x89")
        elif isinstance(o, np.ndarray):
            self.tensor(o, where)
        elif isinstance(o, np.generic):
            self.obj(o.item(), where)
        elif isinstance(o, int):
            self.int_(int(o))
        elif isinstance(o, float):
            self.w(b"G" + struct.pack(">d", o))
        elif isinstance(o, str):
            self.str_(o)
        elif isinstance(o, (bytes, bytearray)):
            self.global_("_codecs", "encode")
            self.str_(bytes(o).decode("latin1"))
            self.str_("latin1")
            self.w(b"\x86R")
        elif isinstance(o, (list, tuple, dict)):
            if id(o) in self._active:
                raise CheckpointError(f"{self.path}: cannot save a self-referencing container at '{where}'")
            self._active.add(id(o))
            try:
                self._container(o, where)
            finally:
                self._active.discard(id(o))
        else:
            raise CheckpointError(f"{self.path}: cannot save object of type {type(o).__name__} at '{where}'")

    def _container(self, o: Any, where: str) -> None:
        if isinstance(o, tuple):
            if not o:
                self.w(b")")
                return
            self.w(b"(")
            for i, v in enumerate(o):
                self.obj(v, f"{where}[{i}]")
            self.w(b"t")
        elif isinstance(o, list):
            self.w(b"]")
            if o:
                self.w(b"(")
                for i, v in enumerate(o):
                    self.obj(v, f"{where}[{i}]")
                self.w(b"e")
        else:
            if isinstance(o, collections.OrderedDict):
                self.ordered_dict_new()
            else:
                self.w(b"}")
            if o:
                self.w(b"(")
                for k, v in o.items():
                    if not isinstance(k, (str, int, float, bool, type(None), tuple)):
                        raise CheckpointError(f"{self.path}: unsupported dict key type {type(k).__name__} at '{where}'")
                    self.obj(k, where)
                    self.obj(v, f"{where}.{k}" if where else str(k))
                self.w(b"u")

    def dump(self, o: Any) -> bytes:
        self.w(b"\x80\x02")
        self.obj(o)
        self.w(b".")
        return self.out.getvalue()


def _write_record(zf: zipfile.ZipFile, fp: BinaryIO, name: str, data: bytes, align: int = 64) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16
    # pad the local header with an extra field so that the payload starts on an `align` boundary
    offset = fp.tell()
    raw_name = name.encode("utf-8")
    start = offset + 30 + len(raw_name) + 4
    pad = (-start) % align
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (nested dicts/OrderedDicts/lists/tuples of numpy arrays, ints, floats, strings,
    bools, None) as a ``torch.save`` zip archive readable by ``torch.load(path, weights_only=True)``.

    Arrays become contiguous little-endian CPU tensors.  The file is written atomically (temporary
    file in the same directory, then :func:`os.replace`).
    """
    path = os.fspath(path)
    writer = _Writer(path)
    data_pkl = writer.dump(obj)
    stem = os.path.splitext(os.path.basename(path))[0]
    archive = "".join(c if (c.isalnum() or c in "_-") else "_" for c in stem) or "archive"
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fp:
            with zipfile.ZipFile(fp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                _write_record(zf, fp, f"{archive}/data.pkl", data_pkl)
                _write_record(zf, fp, f"{archive}/.format_version", b"1")
                _write_record(zf, fp, f"{archive}/.storage_alignment", b"64")
                _write_record(zf, fp, f"{archive}/byteorder", b"little")
                for key, data in writer.storages:
                    _write_record(zf, fp, f"{archive}/data/{key}", data.tobytes())
                _write_record(zf, fp, f"{archive}/version", b"3\n")
                serial = str(secrets.randbits(128)).zfill(40).encode("ascii")
                _write_record(zf, fp, f"{archive}/.data/serialization_id", serial)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
