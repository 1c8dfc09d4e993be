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

Every pickle goes through :class:`alignjax.io.safe_pickle.RestrictedUnpickler` with the globals the
caller allows (default :data:`TORCH_FILE_GLOBALS`: plain data, torch tensors, ``argparse.Namespace`` and
``dnnlib.EasyDict``); tensors come back as numpy arrays (bfloat16 as ``ml_dtypes.bfloat16``).
``torch.storage._load_from_bytes`` payloads are read by :func:`load_torch_bytes` with the same globals.

Writing: :func:`save_torch` (in :mod:`alignjax.io.torch_save`, re-exported here).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

from alignjax.io.budget import _fmt_bytes, allocation_budget, charge, current_budget
from alignjax.io.safe_pickle import (
    ARGPARSE_GLOBALS,
    BASE_GLOBALS,
    DNNLIB_GLOBALS,
    PARSE_ERRORS,
    CheckpointError,
    Globals,
    corrupt_error,
    unpickle,
)
from alignjax.io.torch_pickle import TORCH_GLOBALS, NumpyStorage, TorchDType, TorchStorageType
from alignjax.io.torch_save import save_torch

__all__ = ['TORCH_FILE_GLOBALS', 'is_torch_legacy', 'is_torch_zip', 'load_torch', 'load_torch_bytes', 'save_torch']

# what a torch.save file of plain data may reference: containers, numpy, torch tensors and storages
TORCH_FILE_GLOBALS: dict[tuple[str, str], Any] = {**BASE_GLOBALS, **TORCH_GLOBALS, **ARGPARSE_GLOBALS, **DNNLIB_GLOBALS}

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_MAGIC_LE = MAGIC_NUMBER.to_bytes(10, 'little')
_ZIP_MAGIC = b'PK\x03\x04'
# compressed zip members (torch.save never compresses; a re-zipped file may): what one may expand to
ZIP_MAX_RATIO = 32
ZIP_RATIO_SLACK = 1 << 20
_CHUNK = 16 << 20


# --------------------------------------------------------------------------------------------
# sniffing


def is_torch_zip(head: bytes) -> bool:
    return head.startswith(_ZIP_MAGIC)


def is_torch_legacy(head: bytes) -> bool:
    """True when ``head`` starts with the pickled torch magic number (legacy format)."""
    body = head[2:] if head[:1] == b'\x80' else head
    return body[:2] == b'\x8a\x0a' and body[2:12] == _MAGIC_LE


def _is_tar(f: BinaryIO) -> bool:
    pos = f.tell()
    try:
        f.seek(257)
        return f.read(5) == b'ustar'
    finally:
        f.seek(pos)


# --------------------------------------------------------------------------------------------
# loading


def load_torch(path: str | os.PathLike, allowed: Globals | None = None) -> Any:
    """Load a ``torch.save`` file (zip or legacy) or a pickle with embedded torch storages.

    ``allowed``: the globals the pickles may reference (default :data:`TORCH_FILE_GLOBALS`).
    Tensors are returned as numpy arrays.  Like torch tensors, arrays that share a storage are views
    of the same buffer (copy them before mutating if that matters).  Raises :class:`CheckpointError`
    for anything malformed, truncated or not on the allow-list.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        f = open(path, 'rb')
    except OSError as exc:
        raise CheckpointError(f'{path}: cannot read checkpoint ({exc})') from exc
    with f:
        return _load_stream(f, name=path, size=size, allowed=allowed)


def load_torch_bytes(data: bytes, *, name: str = '<bytes>', allowed: Globals | None = None) -> Any:
    """:func:`load_torch` for an in-memory file."""
    return _load_stream(io.BytesIO(data), name=name, size=len(data), allowed=allowed)


def _with_embedded_storages(allowed: Globals | None, name: str) -> dict:
    """``allowed`` plus ``torch.storage._load_from_bytes`` (pickled storages: the bytes are a torch.save file,
    read with the same globals; errors name the outer file)."""
    allowed = TORCH_FILE_GLOBALS if allowed is None else allowed

    def load_from_bytes(data: Any) -> Any:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError('torch.storage._load_from_bytes payload is not bytes')
        return load_torch_bytes(bytes(data), name=f'{name} (embedded torch storage)', allowed=allowed)

    return {**allowed, ('torch.storage', '_load_from_bytes'): load_from_bytes}


def _load_stream(f: BinaryIO, *, name: str, size: int, allowed: Globals | None) -> Any:
    allowed = _with_embedded_storages(allowed, name)
    if size == 0:
        raise CheckpointError(f'{name} is empty (0 bytes): truncated or corrupt')
    head = f.read(64)
    f.seek(0)
    with allocation_budget(name, size):
        if is_torch_zip(head):
            return _load_zip(f, name=name, size=size, allowed=allowed)
        if is_torch_legacy(head):
            return _load_legacy(f, name=name, size=size, allowed=allowed)
        if _is_tar(f):
            raise CheckpointError(f'{name}: the tar-based torch.save format (torch < 0.4) is not supported')
        return unpickle(f, path=name, allowed=allowed)


def _storage_dtype(storage_type: Any, name: str) -> np.dtype:
    if isinstance(storage_type, (TorchStorageType, TorchDType)) and storage_type.dtype is not None:
        return storage_type.dtype
    raise CheckpointError(f'{name}: unsupported torch storage type {storage_type!r}')


def _typename(pid: Any, name: str) -> str:
    if not isinstance(pid, tuple) or not pid:
        raise CheckpointError(f'{name}: malformed persistent id {pid!r}')
    typename = pid[0]
    if isinstance(typename, bytes):
        typename = typename.decode('ascii', 'replace')
    return str(typename)


def _swap_to_native(arr: np.ndarray) -> None:
    if arr.dtype.itemsize > 1:
        arr.byteswap(inplace=True)


def _check_members(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """Before anything is read: every member lies inside the file, and a compressed one expands at most
    ZIP_MAX_RATIO-fold (+1 MiB); the budget grows by what the compressed members may expand to."""
    grant = 0
    for info in zf.infolist():
        if info.header_offset + info.compress_size > size or info.file_size < 0:
            raise CheckpointError(
                f"{name}: zip record '{info.filename}' claims {info.compress_size} bytes at offset "
                f'{info.header_offset}, past the end of the {size}-byte file (truncated or corrupt)'
            )
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise CheckpointError(
                    f"{name}: stored zip record '{info.filename}' claims {info.file_size} bytes "
                    f'but holds {info.compress_size} (corrupt)'
                )
            continue
        if info.file_size > ZIP_MAX_RATIO * info.compress_size + ZIP_RATIO_SLACK:
            raise CheckpointError(
                f"{name}: zip record '{info.filename}' would expand from {_fmt_bytes(info.compress_size)} to "
                f'{_fmt_bytes(info.file_size)} (more than {ZIP_MAX_RATIO}x): refusing to decompress it (a '
                'decompression bomb, or a corrupt file)'
            )
        grant += min(info.file_size, ZIP_MAX_RATIO * info.compress_size)
    budget = current_budget()
    if budget is not None:
        budget.grant(grant)


def _read_record(zf: zipfile.ZipFile, record: str, nbytes: int) -> bytearray:
    """The whole record (CRC-checked) into one buffer of its size, in chunks (no second copy)."""
    buf = bytearray(nbytes)
    view = memoryview(buf)
    with zf.open(record) as rf:
        pos = 0
        while pos < nbytes:
            chunk = rf.read(min(_CHUNK, nbytes - pos))
            if not chunk:
                raise EOFError(f"zip record '{record}' ends after {pos} of {nbytes} bytes")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        if rf.read(1):
            raise ValueError(f"zip record '{record}' holds more than {nbytes} bytes")
    return buf


def _load_zip(f: BinaryIO, *, name: str, size: int, allowed: Globals) -> Any:
    try:
        zf = zipfile.ZipFile(f)
        names = zf.namelist()
    except PARSE_ERRORS as exc:
        raise corrupt_error(name, exc) from exc
    with zf:
        _check_members(zf, name, size)
        pkl = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
        if not pkl:
            raise CheckpointError(f"{name}: zip file without a torch 'data.pkl' record (not a torch.save file)")
        prefix = pkl[0][: -len('data.pkl')]
        byteorder = 'little'
        if prefix + 'byteorder' in names:
            try:
                byteorder = zf.read(prefix + 'byteorder').decode('ascii').strip()
            except PARSE_ERRORS as exc:
                raise corrupt_error(name, exc) from exc
            if byteorder not in ('little', 'big'):
                raise CheckpointError(f'{name}: unknown byteorder record {byteorder!r}')
        raw_cache: dict[str, bytearray] = {}
        storages: dict[tuple[str, str], NumpyStorage] = {}

        def persistent_load(pid: Any) -> Any:
            typename = _typename(pid, name)
            if typename != 'storage' or len(pid) < 5:
                raise CheckpointError(f'{name}: unsupported persistent id {pid!r}')
            storage_type, key, location, numel = pid[1:5]
            dtype = _storage_dtype(storage_type, name)
            key = str(key)
            cache_key = (key, dtype.str if dtype.names is None else repr(dtype))
            if cache_key in storages:
                return storages[cache_key]
            record = f'{prefix}data/{key}'
            if record not in names:
                raise CheckpointError(f"{name}: storage record '{record}' is missing (truncated or corrupt)")
            held = zf.getinfo(record).file_size
            numel = int(numel)
            nbytes = numel * dtype.itemsize
            # torch.save writes each storage as one record of exactly its size: a record that claims more than
            # the tensor the pickle describes is refused before anything is decompressed or allocated
            if numel < 0 or held != nbytes:
                raise CheckpointError(
                    f"{name}: storage '{record}' holds {held} bytes, expected {nbytes} "
                    f'({numel} x {dtype}) ({"truncated or corrupt" if held < nbytes else "corrupt or malicious"})'
                )
            if key not in raw_cache:
                # the record is read only once its size is known to fit the file (and the tensor it holds)
                charge(held, f"storage record '{record}' ({numel} x {dtype})")
                raw_cache[key] = _read_record(zf, record, held)
            raw = raw_cache[key]
            arr = np.frombuffer(raw, dtype=dtype, count=numel)
            if byteorder == 'big':
                arr = arr.copy()
                _swap_to_native(arr)
            st = NumpyStorage(arr, location=str(location), key=key)
            storages[cache_key] = st
            return st

        try:
            with zf.open(prefix + 'data.pkl') as pf:
                return unpickle(pf, path=name, allowed=allowed, persistent_load=persistent_load)
        except CheckpointError:
            raise
        except PARSE_ERRORS as exc:
            raise corrupt_error(name, exc) from exc


def _load_legacy(f: BinaryIO, *, name: str, size: int, allowed: Globals) -> Any:
    magic = unpickle(f, path=name, allowed=allowed)
    if magic != MAGIC_NUMBER:
        raise CheckpointError(f'{name}: invalid torch magic number (not a torch.save file or corrupt)')
    protocol = unpickle(f, path=name, allowed=allowed)
    if protocol != PROTOCOL_VERSION:
        raise CheckpointError(f'{name}: unsupported legacy torch protocol version {protocol!r}')
    sys_info = unpickle(f, path=name, allowed=allowed)
    little = True
    if isinstance(sys_info, dict):
        little = bool(sys_info.get('little_endian', True))

    roots: dict[str, NumpyStorage] = {}
    views: dict[str, NumpyStorage] = {}
    claimed = [0]  # bytes of all root storages so far: their data must follow in this file

    def persistent_load(pid: Any) -> Any:
        typename = _typename(pid, name)
        if typename != 'storage' or len(pid) != 6:
            raise CheckpointError(f'{name}: unsupported persistent id {pid!r}')
        storage_type, root_key, location, numel, view_metadata = pid[1:]
        dtype = _storage_dtype(storage_type, name)
        root_key = str(root_key)
        numel = int(numel)
        if root_key not in roots:
            claimed[0] += numel * dtype.itemsize
            if numel < 0 or claimed[0] > size:
                raise CheckpointError(
                    f"{name}: storage '{root_key}' claims {numel} x {dtype} but the file has only "
                    f'{size} bytes for all its storages (truncated or corrupt)'
                )
            charge(numel * dtype.itemsize, f"storage '{root_key}' ({numel} x {dtype})")
            roots[root_key] = NumpyStorage(np.empty(numel, dtype=dtype), location=str(location), key=root_key)
        root = roots[root_key]
        if view_metadata is None:
            return root
        view_key, offset, view_size = view_metadata
        view_key, offset, view_size = str(view_key), int(offset), int(view_size)
        if view_key not in views:
            if offset < 0 or view_size < 0 or offset + view_size > root.numel:
                raise CheckpointError(f"{name}: storage view '{view_key}' is out of bounds")
            views[view_key] = NumpyStorage(
                root.array[offset : offset + view_size], location=str(location), key=view_key
            )
        return views[view_key]

    result = unpickle(f, path=name, allowed=allowed, persistent_load=persistent_load)
    keys = unpickle(f, path=name, allowed=allowed)
    if not isinstance(keys, list):
        raise corrupt_error(name, what='(storage key list)')
    try:
        for key in keys:
            key = str(key)
            if key not in roots:
                raise CheckpointError(f"{name}: storage '{key}' is listed but never referenced (corrupt)")
            st = roots[key]
            header = f.read(8)
            if len(header) != 8:
                raise corrupt_error(name, what=f"(storage '{key}' missing)")
            (numel,) = struct.unpack('<q' if little else '>q', header)
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
