"""Writing ``torch.save`` files without PyTorch.

:func:`save_torch` writes the zip format with protocol-2 pickles that only use
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

from alignjax.errors import CheckpointError
from alignjax.io.torch_pickle import NUMPY_TO_STORAGE

__all__ = ['save_torch']


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
        self.w(b'c' + module.encode('ascii') + b'\n' + name.encode('ascii') + b'\n')

    def str_(self, s: str) -> None:
        data = s.encode('utf-8', 'surrogatepass')
        self.w(b'X' + struct.pack('<I', len(data)) + data)

    def int_(self, v: int) -> None:
        if 0 <= v < 0x100:
            self.w(b'K' + bytes([v]))
        elif 0 <= v < 0x10000:
            self.w(b'M' + struct.pack('<H', v))
        elif -0x80000000 <= v < 0x80000000:
            self.w(b'J' + struct.pack('<i', v))
        else:
            nbytes = (v.bit_length() + 8) // 8
            data = v.to_bytes(nbytes, 'little', signed=True)
            self.w(b'\x8a' + bytes([len(data)]) + data)

    def ordered_dict_new(self) -> None:
        self.global_('collections', 'OrderedDict')
        self.w(b')R')

    def tensor(self, arr: np.ndarray, where: str) -> None:
        entry = self._storage_keys.get(id(arr))
        if entry is None:
            native = arr.dtype.newbyteorder('=') if arr.dtype.byteorder not in ('=', '|') else arr.dtype
            storage_name = NUMPY_TO_STORAGE.get(native)
            if storage_name is None:
                raise CheckpointError(
                    f"{self.path}: cannot save array '{where}' of dtype {arr.dtype} as a torch tensor"
                )
            little = native.newbyteorder('<') if native.itemsize > 1 else native
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
        self.global_('torch._utils', '_rebuild_tensor_v2')
        self.w(b'(')
        # persistent id of the storage
        self.w(b'(')
        self.str_('storage')
        self.global_('torch', storage_name)
        self.str_(key)
        self.str_('cpu')
        self.int_(numel)
        self.w(b'tQ')
        self.int_(0)  # storage_offset
        self.tuple_items([int(n) for n in shape])
        self.tuple_items(list(strides))
        self.w(b'\x89')  # requires_grad False
        self.ordered_dict_new()  # backward hooks
        self.w(b'tR')

    def tuple_items(self, items: list[int]) -> None:
        if not items:
            self.w(b')')
            return
        self.w(b'(')
        for v in items:
            self.int_(v)
        self.w(b't')

    def obj(self, o: Any, where: str = '') -> None:
        if o is None:
            self.w(b'N')
        elif o is True:
            self.w(b'\x88')
        elif o is False:
            self.w(b'\x89')
        elif isinstance(o, np.ndarray):
            self.tensor(o, where)
        elif isinstance(o, np.generic):
            self.obj(o.item(), where)
        elif isinstance(o, int):
            self.int_(int(o))
        elif isinstance(o, float):
            self.w(b'G' + struct.pack('>d', o))
        elif isinstance(o, str):
            self.str_(o)
        elif isinstance(o, (bytes, bytearray)):
            self.global_('_codecs', 'encode')
            self.str_(bytes(o).decode('latin1'))
            self.str_('latin1')
            self.w(b'\x86R')
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
                self.w(b')')
                return
            self.w(b'(')
            for i, v in enumerate(o):
                self.obj(v, f'{where}[{i}]')
            self.w(b't')
        elif isinstance(o, list):
            self.w(b']')
            if o:
                self.w(b'(')
                for i, v in enumerate(o):
                    self.obj(v, f'{where}[{i}]')
                self.w(b'e')
        else:
            if isinstance(o, collections.OrderedDict):
                self.ordered_dict_new()
            else:
                self.w(b'}')
            if o:
                self.w(b'(')
                for k, v in o.items():
                    if not isinstance(k, (str, int, float, bool, type(None), tuple)):
                        raise CheckpointError(f"{self.path}: unsupported dict key type {type(k).__name__} at '{where}'")
                    self.obj(k, where)
                    self.obj(v, f'{where}.{k}' if where else str(k))
                self.w(b'u')

    def dump(self, o: Any) -> bytes:
        self.w(b'\x80\x02')
        self.obj(o)
        self.w(b'.')
        return self.out.getvalue()


def _write_record(zf: zipfile.ZipFile, fp: BinaryIO, name: str, data: bytes, align: int = 64) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16
    # pad the local header with an extra field so that the payload starts on an `align` boundary
    offset = fp.tell()
    raw_name = name.encode('utf-8')
    start = offset + 30 + len(raw_name) + 4
    pad = (-start) % align
    info.extra = b'FB' + struct.pack('<H', pad) + b'Z' * pad
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
    archive = ''.join(c if (c.isalnum() or c in '_-') else '_' for c in stem) or 'archive'
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as fp:
            with zipfile.ZipFile(fp, 'w', compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                _write_record(zf, fp, f'{archive}/data.pkl', data_pkl)
                _write_record(zf, fp, f'{archive}/.format_version', b'1')
                _write_record(zf, fp, f'{archive}/.storage_alignment', b'64')
                _write_record(zf, fp, f'{archive}/byteorder', b'little')
                for key, data in writer.storages:
                    _write_record(zf, fp, f'{archive}/data/{key}', data.tobytes())
                _write_record(zf, fp, f'{archive}/version', b'3\n')
                serial = str(secrets.randbits(128)).zfill(40).encode('ascii')
                _write_record(zf, fp, f'{archive}/.data/serialization_id', serial)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
