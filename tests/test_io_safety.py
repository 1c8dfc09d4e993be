"""Checkpoint loading never executes code from the file and turns bad input into CheckpointError."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, require

from alignjax.io.formats import detect_format, read_nvlabs_pkl, read_raw, read_rosinality_pt, read_tf_pkl
from alignjax.io.safe_pickle import CheckpointError, load_pickle
from alignjax.io.torch_file import load_torch, load_torch_bytes

FILES = {'nvlabs': 'nvlabs.pkl', 'rosinality': 'rosinality.pt', 'tf': 'tf.pkl'}
READERS = {'nvlabs': read_nvlabs_pkl, 'rosinality': read_rosinality_pt, 'tf': read_tf_pkl}
SYSTEM = f'{os.system.__module__}.system'  # posix.system (nt.system on Windows)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'echo pwned > {self.marker}',))


def _evil_pickle(marker: Path, protocol: int = 2) -> bytes:
    data = pickle.dumps({'G': _Evil(marker)}, protocol=protocol)
    assert b'system' in data
    return data


def _torch_zip(data_pkl: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('archive/data.pkl', data_pkl)
        z.writestr('archive/byteorder', b'little')
        for k, v in (storages or {}).items():
            z.writestr(f'archive/data/{k}', v)
        z.writestr('archive/version', b'3\n')
    return buf.getvalue()


def _legacy(main: bytes, keys=(), raw: bytes = b'') -> bytes:
    head = b''.join(
        pickle.dumps(x, protocol=2)
        for x in (0x1950A86A20F9469CFC6C, 1001, {'protocol_version': 1001, 'little_endian': True})
    )
    return head + main + pickle.dumps(list(keys), protocol=2) + raw


def _assert_refused(exc: CheckpointError, path: str, marker: Path):
    msg = str(exc)
    assert SYSTEM in msg and 'os.system' in msg, msg
    assert path in msg, msg
    assert not marker.exists(), 'the payload ran'


# ---------------------------------------------------------------------------------------------------------
# malicious pickles


@pytest.mark.parametrize('protocol', [2, 4])
def test_malicious_plain_pickle_is_refused(tmp_path, protocol):
    marker = tmp_path / 'pwned'
    p = tmp_path / 'evil.pkl'
    p.write_bytes(_evil_pickle(marker, protocol))
    assert detect_format(p) == 'nvlabs'  # detection reads opcodes only, it builds nothing
    assert not marker.exists()
    for load in (load_pickle, load_torch, read_nvlabs_pkl, read_tf_pkl, read_raw):
        with pytest.raises(CheckpointError) as e:
            load(p)
        _assert_refused(e.value, str(p), marker)


def test_malicious_pickle_of_unknown_layout_is_refused_by_detection(tmp_path):
    marker = tmp_path / 'pwned'
    p = tmp_path / 'evil2.pkl'
    p.write_bytes(pickle.dumps([_Evil(marker)], protocol=4))
    for load in (detect_format, read_raw):
        with pytest.raises(CheckpointError) as e:
            load(p)
        _assert_refused(e.value, str(p), marker)


def test_malicious_pickle_in_zip_archive_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    p = tmp_path / 'evil.pt'
    p.write_bytes(_torch_zip(_evil_pickle(marker)))
    assert detect_format(p) == 'rosinality'  # detection looks at the container only
    for load in (load_torch, read_rosinality_pt, read_raw):
        with pytest.raises(CheckpointError) as e:
            load(p)
        _assert_refused(e.value, str(p), marker)


def test_malicious_pickle_in_legacy_torch_file_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    p = tmp_path / 'evil_legacy.pt'
    p.write_bytes(_legacy(_evil_pickle(marker)))
    with pytest.raises(CheckpointError) as e:
        load_torch(p)
    _assert_refused(e.value, str(p), marker)


def test_malicious_embedded_storage_is_refused(tmp_path):
    """An NVlabs-style pickle whose tensor storage bytes (torch.storage._load_from_bytes) are malicious."""
    marker = tmp_path / 'pwned'
    inner = _legacy(_evil_pickle(marker))
    outer = (
        b'\x80\x04}(\x8c\x01G\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93'
        + b'B'
        + struct.pack('<I', len(inner))
        + inner
        + b'\x85Ru.'
    )
    p = tmp_path / 'evil_nested.pkl'
    p.write_bytes(outer)
    with pytest.raises(CheckpointError) as e:
        load_torch(p)
    _assert_refused(e.value, str(p), marker)
    assert 'embedded torch storage' in str(e.value)


@pytest.mark.parametrize(
    'module,name',
    [
        ('builtins', 'eval'),
        ('builtins', 'getattr'),
        ('builtins', '__import__'),
        ('subprocess', 'Popen'),
        ('torch', 'load'),
        ('numpy', 'load'),
        ('torch_utils.persistence', '_reconstruct_persistent_class'),
        ('dnnlib.tflib.network', '_import_module_src'),
    ],
)
def test_globals_off_the_allow_list_are_named(tmp_path, module, name):
    data = b'\x80\x02c' + module.encode() + b'\n' + name.encode() + b'\nX\x03\x00\x00\x001+1\x85R.'
    p = tmp_path / 'bad.pkl'
    p.write_bytes(data)
    with pytest.raises(CheckpointError, match=f"'{module}.{name}") as e:
        load_pickle(p)
    assert str(p) in str(e.value)


def test_out_of_bounds_tensor_view_is_refused(tmp_path):
    """A tensor whose size/stride reach past its storage must not read foreign memory."""

    def X(s):
        return b'X' + struct.pack('<I', len(s)) + s.encode()

    pid = b'(' + X('storage') + b'ctorch\nFloatStorage\n' + X('0') + X('cpu') + b'K\x04tQ'
    main = (
        b'\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(' + pid + b'K\x00(M\x00\x01t(K\x01t\x89'
        b'ccollections\nOrderedDict\n)RtR.'
    )
    p = tmp_path / 'oob.pt'
    p.write_bytes(_torch_zip(main, {'0': b'\x00' * 16}))
    with pytest.raises(CheckpointError, match='storage holds 4'):
        load_torch(p)
    # storage record shorter than its declared element count
    p.write_bytes(_torch_zip(main.replace(b'M\x00\x01', b'K\x04'), {'0': b'\x00' * 8}))
    with pytest.raises(CheckpointError, match='holds 8 bytes, expected 16'):
        load_torch(p)


# ---------------------------------------------------------------------------------------------------------
# truncated / corrupt / empty files


@pytest.fixture(scope='module')
def fx() -> Path:
    for f in FILES.values():
        require(FIXTURES / f, 'checkpoint fixtures')  # fails instead of skipping under CI=true
    return FIXTURES


@pytest.mark.parametrize('fraction', [0.6, 0.02, 0.999])
@pytest.mark.parametrize('fmt', sorted(FILES))
def test_truncated_fixtures(fx, tmp_path, fmt, fraction):
    data = (fx / FILES[fmt]).read_bytes()
    p = tmp_path / f'cut_{FILES[fmt]}'
    p.write_bytes(data[: int(len(data) * fraction)])
    for load in (read_raw, READERS[fmt]):
        with pytest.raises(CheckpointError, match='truncated or corrupt') as e:
            load(p)
        assert str(p) in str(e.value)


@pytest.mark.parametrize(
    'load', [read_raw, detect_format, load_torch, load_pickle, read_nvlabs_pkl, read_rosinality_pt, read_tf_pkl]
)
def test_empty_file(tmp_path, load):
    p = tmp_path / 'empty.pkl'
    p.write_bytes(b'')
    with pytest.raises(CheckpointError, match='truncated or corrupt') as e:
        load(p)
    assert str(p) in str(e.value)


def test_garbage_and_missing_files(tmp_path):
    p = tmp_path / 'garbage.pt'
    p.write_bytes(b'PK\x03\x04' + os.urandom(200))
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        read_raw(p)
    p.write_bytes(b'\x80\x04' + b'\xff' * 50)
    with pytest.raises(CheckpointError):
        load_torch(p)
    with pytest.raises(CheckpointError, match='nope.pkl'):
        read_raw(tmp_path / 'nope.pkl')
    with pytest.raises(CheckpointError, match='in-memory'):
        load_torch_bytes(b'\x80\x02}q\x00(X', name='in-memory')


def test_wrong_container_contents(tmp_path):
    p = tmp_path / 'list.pt'
    p.write_bytes(_torch_zip(pickle.dumps([1, 2, 3], protocol=2)))
    with pytest.raises(CheckpointError, match='not a rosinality checkpoint'):
        read_rosinality_pt(p)
    q = tmp_path / 'dict.pkl'
    q.write_bytes(pickle.dumps({'G': 1}, protocol=4))
    with pytest.raises(CheckpointError, match="'G' is int"):
        read_nvlabs_pkl(q)
    with pytest.raises(CheckpointError, match='TensorFlow'):
        read_tf_pkl(q)
