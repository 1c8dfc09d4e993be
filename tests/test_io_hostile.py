"""Hostile checkpoints: memory is bounded by what a file holds (not what it claims), nothing crashes, errors name
the file's own keys, non-finite weights are refused, StyleGAN3 pickles are refused clearly."""
from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from alignjax.io.safe_pickle import CheckpointError, loads_pickle
from alignjax.io.torch_file import load_torch, load_torch_bytes

ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30


def X(s: str) -> bytes:
    return b"X" + struct.pack("<I", len(s)) + s.encode()


def _long(v: int) -> bytes:
    data = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def bytearray_bomb(n: int = 2 * GiB) -> bytes:
    """A ~32-byte pickle: builtins.bytearray(n)."""
    return b"\x80\x02cbuiltins\nbytearray\n" + _long(n) + b"\x85R."


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, payload, method, crc, uncompressed size) per member."""
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, usize in members:
        fn = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), usize, len(fn), 0)
        out += fn + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(payload), usize,
                               len(fn), 0, 0, 0, 0, 0, offset) + fn
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + eocd)


def _stored(name: str, data: bytes):
    return (name, data, 0, zlib.crc32(data), len(data))


def tensor_pickle(numel: int, key: str = "0", storage: str = "FloatStorage") -> bytes:
    """data.pkl of {'w': tensor of `numel` elements of storage `key`} (as torch.save writes it)."""
    pid = b"(" + X("storage") + f"ctorch\n{storage}\n".encode() + X(key) + X("cpu") + _long(numel) + b"tQ"
    return (b"\x80\x02}(" + X("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"K\x00(" + _long(numel)
            + b"t(K\x01t\x89ccollections\nOrderedDict\n)RtRu.")


def torch_zip(storages: dict[str, bytes], numel: int) -> bytes:
    return _zip([_stored("archive/data.pkl", tensor_pickle(numel)), _stored("archive/byteorder", b"little")]
                + [_stored(f"archive/data/{k}", v) for k, v in storages.items()])


def deflate_bomb(nbytes: int = 3 * GiB // 2) -> bytes:
    """A ~1.5 MB torch zip whose one storage record is DEFLATE-compressed from `nbytes` zero bytes (a valid
    stream with the right CRC: it decompresses to a float32 tensor of nbytes / 4 elements)."""
    chunk = bytes(16 << 20)
    assert nbytes % len(chunk) == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, dictionary reset: repeatable
    stream = piece * (nbytes // len(chunk)) + c.flush()
    crc = 0
    for _ in range(nbytes // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return _zip([_stored("archive/data.pkl", tensor_pickle(nbytes // 4)), _stored("archive/byteorder", b"little"),
                 ("archive/data/0", stream, 8, crc, nbytes)])


# ---------------------------------------------------------------------------------------------------------
# memory: peak RSS of a child process


_CHILD = textwrap.dedent("""
    import json, sys
    import jax, alignjax as aj
    from alignjax.io.torch_file import load_torch

    def hwm():
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    out = {'baseline': hwm()}
    for path in sys.argv[1:]:
        errors = []
        for load in (aj.load_checkpoint, load_torch):
            try:
                load(path)
                errors.append('loaded')
            except aj.CheckpointError as exc:
                errors.append(str(exc))
        out[path] = {'peak': hwm(), 'errors': errors}
    print(json.dumps(out))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_hostile_files_are_refused_before_allocating(tmp_path):
    """A 32-byte `bytearray(2 GiB)` pickle and a 1.5 MB zip of a DEFLATE'd 1.5 GiB storage (2.2 GB / 3.3 GB peak
    RSS before): the child's peak stays within 2x the file size + a margin over its baseline (jax + alignjax)."""
    files = [tmp_path / "bytearray.pkl", tmp_path / "bomb.pt"]
    files[0].write_bytes(bytearray_bomb())
    files[1].write_bytes(deflate_bomb())
    sizes = [f.stat().st_size for f in files]
    assert sizes[0] < 40 and sizes[1] < 2_000_000
    r = subprocess.run([sys.executable, "-c", _CHILD, *map(str, files)], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    base, margin = out["baseline"], 48 << 20
    for f, size in zip(files, sizes):
        got = out[str(f)]
        for msg in got["errors"]:
            assert str(f) in msg and "refusing" in msg, msg
        assert got["peak"] <= base + 2 * size + margin, (f.name, got["peak"] - base, size)
    assert "builtins.bytearray(2147483648)" in out[str(files[0])]["errors"][0]
    assert "archive/data/0" in out[str(files[1])]["errors"][0]


# ---------------------------------------------------------------------------------------------------------
# allocation caps, in process (small claims, fast)


def test_allocating_globals_are_capped():
    with pytest.raises(CheckpointError, match=r"<b>: refusing to allocate 2.0 GiB for builtins.bytearray"):
        loads_pickle(bytearray_bomb(), name="<b>")
    # np.ndarray is a marker, not a class: NEWOBJ(numpy.ndarray, (huge,)) cannot allocate
    newobj = b"\x80\x02cnumpy\nndarray\n(" + _long(1 << 40) + b"\x85t\x81."
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        loads_pickle(newobj)
    # numpy's own _reconstruct with a claimed shape
    rec = (b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _long(1 << 34) + b"\x85"
           b"cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R\x87R.")
    with pytest.raises(CheckpointError, match="refusing to allocate 64.0 GiB for a numpy array"):
        loads_pickle(rec)
    # containers built from bytes would amplify them 8x: only from containers the pickle built
    with pytest.raises(CheckpointError, match="builtins.tuple of bytes"):
        loads_pickle(b"\x80\x03cbuiltins\ntuple\nC\x04abcd\x85R.")
    # a legacy torch file whose storages together claim more than the file holds
    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))

    def pid(key, numel):
        return b"(" + X("storage") + b"ctorch\nFloatStorage\n" + X(key) + X("cpu") + _long(numel) + b"NtQ"

    main = b"\x80\x02(" + pid("a", 300) + pid("b", 300) + b"l."
    data = head + main + pickle.dumps(["a", "b"], protocol=2) + b"\x00" * 1400
    with pytest.raises(CheckpointError, match="storage 'b' claims 300 x float32 .* for all its storages"):
        load_torch_bytes(data, name="legacy")


def test_object_arrays_are_refused_not_crashed():
    """numpy's __setstate__ trusts the shape of an object array: a wrong one segfaulted the loader."""
    a = pickle.dumps(np.array([1, "x", None], dtype=object), protocol=2)
    bad = a.replace(b"K\x03\x85", b"J\x00\x00\x00\x10\x85")
    assert bad != a
    for data in (a, bad):
        with pytest.raises(CheckpointError, match="object-dtype"):
            loads_pickle(data)


def test_legit_pickles_still_load():
    obj = collections.OrderedDict(a={1, 2}, b=frozenset([3]), c=bytearray(b"xyz"), d=np.arange(6.0).reshape(2, 3),
                                  e=complex(1, 2), f=np.float32(1.5), g=[(1, 2)], h={"k": b"\x00\xff"})
    for protocol in range(6):
        back = loads_pickle(pickle.dumps(obj, protocol=protocol))
        assert list(back) == list(obj) and back["a"] == {1, 2} and back["b"] == frozenset([3])
        assert back["c"] == bytearray(b"xyz") and back["e"] == 1 + 2j and back["h"] == {"k": b"\x00\xff"}
        np.testing.assert_array_equal(back["d"], obj["d"])


def test_zip_records_are_checked_before_reading(tmp_path):
    # a stored record whose header claims more than the file holds
    data = bytearray(torch_zip({"0": b"\x00" * 16}, 4))
    i = data.index(b"archive/data/0", data.index(b"PK\x01\x02"))  # central directory entry of the storage
    struct.pack_into("<II", data, i - 26, 1 << 30, 1 << 30)
    with pytest.raises(CheckpointError, match="past the end"):
        load_torch_bytes(bytes(data), name="claims.pt")
    # a compressed record that would expand more than 32x
    comp = zlib.compress(bytes(8 << 20))[2:-4]
    z = _zip([_stored("archive/data.pkl", tensor_pickle(2 << 20)), ("archive/data/0", comp, 8,
              zlib.crc32(bytes(8 << 20)), 8 << 20)])
    with pytest.raises(CheckpointError, match=r"'archive/data/0' would expand from .* to 8.0 MiB"):
        load_torch_bytes(z, name="bomb.pt")
    # a modestly compressed record is fine (and CRC-checked)
    raw = np.arange(64, dtype=np.float32).tobytes()
    z = _zip([_stored("archive/data.pkl", tensor_pickle(64)), ("archive/data/0", zlib.compress(raw)[2:-4], 8,
              zlib.crc32(raw), len(raw))])
    np.testing.assert_array_equal(load_torch_bytes(z)["w"], np.arange(64, dtype=np.float32))
