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
from conftest import FIXTURES, require

from alignjax.io.safe_pickle import CheckpointError, loads_pickle
from alignjax.io.torch_file import load_torch, load_torch_bytes

ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30


def X(s: str) -> bytes:
    return b'X' + struct.pack('<I', len(s)) + s.encode()


def _long(v: int) -> bytes:
    data = v.to_bytes((v.bit_length() + 8) // 8, 'little', signed=True)
    return b'\x8a' + bytes([len(data)]) + data


def bytearray_bomb(n: int = 2 * GiB) -> bytes:
    """A ~32-byte pickle: builtins.bytearray(n)."""
    return b'\x80\x02cbuiltins\nbytearray\n' + _long(n) + b'\x85R.'


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, payload, method, crc, uncompressed size) per member."""
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, usize in members:
        fn = name.encode()
        offset = len(out)
        out += struct.pack('<IHHHHHIIIHH', 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), usize, len(fn), 0)
        out += fn + payload
        central += (
            struct.pack(
                '<IHHHHHHIIIHHHHHII',
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(payload),
                usize,
                len(fn),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + fn
        )
    eocd = struct.pack('<IHHHHIIH', 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + eocd)


def _stored(name: str, data: bytes):
    return (name, data, 0, zlib.crc32(data), len(data))


def tensor_pickle(numel: int, key: str = '0', storage: str = 'FloatStorage') -> bytes:
    """data.pkl of {'w': tensor of `numel` elements of storage `key`} (as torch.save writes it)."""
    pid = b'(' + X('storage') + f'ctorch\n{storage}\n'.encode() + X(key) + X('cpu') + _long(numel) + b'tQ'
    return (
        b'\x80\x02}('
        + X('w')
        + b'ctorch._utils\n_rebuild_tensor_v2\n('
        + pid
        + b'K\x00('
        + _long(numel)
        + b't(K\x01t\x89ccollections\nOrderedDict\n)RtRu.'
    )


def torch_zip(storages: dict[str, bytes], numel: int) -> bytes:
    return _zip(
        [_stored('archive/data.pkl', tensor_pickle(numel)), _stored('archive/byteorder', b'little')]
        + [_stored(f'archive/data/{k}', v) for k, v in storages.items()]
    )


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
    return _zip(
        [
            _stored('archive/data.pkl', tensor_pickle(nbytes // 4)),
            _stored('archive/byteorder', b'little'),
            ('archive/data/0', stream, 8, crc, nbytes),
        ]
    )


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


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='needs /proc (Linux)')
def test_hostile_files_are_refused_before_allocating(tmp_path):
    """A 32-byte `bytearray(2 GiB)` pickle and a 1.5 MB zip of a DEFLATE'd 1.5 GiB storage (2.2 GB / 3.3 GB peak
    RSS before): the child's peak stays within 2x the file size + a margin over its baseline (jax + alignjax)."""
    files = [tmp_path / 'bytearray.pkl', tmp_path / 'bomb.pt']
    files[0].write_bytes(bytearray_bomb())
    files[1].write_bytes(deflate_bomb())
    sizes = [f.stat().st_size for f in files]
    assert sizes[0] < 40 and sizes[1] < 2_000_000
    r = subprocess.run(
        [sys.executable, '-c', _CHILD, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    base, margin = out['baseline'], 48 << 20
    for f, size in zip(files, sizes):
        got = out[str(f)]
        for msg in got['errors']:
            assert str(f) in msg and 'refusing' in msg, msg
        assert got['peak'] <= base + 2 * size + margin, (f.name, got['peak'] - base, size)
    assert 'builtins.bytearray(2147483648)' in out[str(files[0])]['errors'][0]
    assert 'archive/data/0' in out[str(files[1])]['errors'][0]


# ---------------------------------------------------------------------------------------------------------
# allocation caps, in process (small claims, fast)


def test_allocating_globals_are_capped():
    with pytest.raises(CheckpointError, match=r'<b>: refusing to allocate 2.0 GiB for builtins.bytearray'):
        loads_pickle(bytearray_bomb(), name='<b>')
    # np.ndarray is a marker, not a class: NEWOBJ(numpy.ndarray, (huge,)) cannot allocate
    newobj = b'\x80\x02cnumpy\nndarray\n(' + _long(1 << 40) + b'\x85t\x81.'
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        loads_pickle(newobj)
    # numpy's own _reconstruct with a claimed shape
    rec = (
        b'\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n' + _long(1 << 34) + b'\x85'
        b'cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R\x87R.'
    )
    with pytest.raises(CheckpointError, match='refusing to allocate 64.0 GiB for a numpy array'):
        loads_pickle(rec)
    # containers built from bytes would amplify them 8x: only from containers the pickle built
    with pytest.raises(CheckpointError, match='builtins.tuple of bytes'):
        loads_pickle(b'\x80\x03cbuiltins\ntuple\nC\x04abcd\x85R.')
    # a legacy torch file whose storages together claim more than the file holds
    head = b''.join(
        pickle.dumps(x, protocol=2)
        for x in (0x1950A86A20F9469CFC6C, 1001, {'protocol_version': 1001, 'little_endian': True})
    )

    def pid(key, numel):
        return b'(' + X('storage') + b'ctorch\nFloatStorage\n' + X(key) + X('cpu') + _long(numel) + b'NtQ'

    main = b'\x80\x02(' + pid('a', 300) + pid('b', 300) + b'l.'
    data = head + main + pickle.dumps(['a', 'b'], protocol=2) + b'\x00' * 1400
    with pytest.raises(CheckpointError, match="storage 'b' claims 300 x float32 .* for all its storages"):
        load_torch_bytes(data, name='legacy')


def test_object_arrays_are_refused_not_crashed():
    """numpy's __setstate__ trusts the shape of an object array: a wrong one segfaulted the loader."""
    a = pickle.dumps(np.array([1, 'x', None], dtype=object), protocol=2)
    bad = a.replace(b'K\x03\x85', b'J\x00\x00\x00\x10\x85')
    assert bad != a
    for data in (a, bad):
        with pytest.raises(CheckpointError, match='object-dtype'):
            loads_pickle(data)


def test_legit_pickles_still_load():
    obj = collections.OrderedDict(
        a={1, 2},
        b=frozenset([3]),
        c=bytearray(b'xyz'),
        d=np.arange(6.0).reshape(2, 3),
        e=complex(1, 2),
        f=np.float32(1.5),
        g=[(1, 2)],
        h={'k': b'\x00\xff'},
    )
    for protocol in range(6):
        back = loads_pickle(pickle.dumps(obj, protocol=protocol))
        assert list(back) == list(obj) and back['a'] == {1, 2} and back['b'] == frozenset([3])
        assert back['c'] == bytearray(b'xyz') and back['e'] == 1 + 2j and back['h'] == {'k': b'\x00\xff'}
        np.testing.assert_array_equal(back['d'], obj['d'])


def test_zip_records_are_checked_before_reading(tmp_path):
    # a stored record whose header claims more than the file holds
    data = bytearray(torch_zip({'0': b'\x00' * 16}, 4))
    i = data.index(b'archive/data/0', data.index(b'PK\x01\x02'))  # central directory entry of the storage
    struct.pack_into('<II', data, i - 26, 1 << 30, 1 << 30)
    with pytest.raises(CheckpointError, match='past the end'):
        load_torch_bytes(bytes(data), name='claims.pt')
    # a compressed record that would expand more than 32x
    comp = zlib.compress(bytes(8 << 20))[2:-4]
    z = _zip(
        [
            _stored('archive/data.pkl', tensor_pickle(2 << 20)),
            ('archive/data/0', comp, 8, zlib.crc32(bytes(8 << 20)), 8 << 20),
        ]
    )
    with pytest.raises(CheckpointError, match=r"'archive/data/0' would expand from .* to 8.0 MiB"):
        load_torch_bytes(z, name='bomb.pt')
    # a record larger than the tensor the pickle describes (torch.save writes exactly its size): refused unread
    with pytest.raises(CheckpointError, match=r'holds 1048576 bytes, expected 16 .*corrupt or malicious'):
        load_torch_bytes(torch_zip({'0': bytes(1 << 20)}, 4), name='big.pt')
    # a modestly compressed record is fine (and CRC-checked)
    raw = np.arange(64, dtype=np.float32).tobytes()
    z = _zip(
        [
            _stored('archive/data.pkl', tensor_pickle(64)),
            ('archive/data/0', zlib.compress(raw)[2:-4], 8, zlib.crc32(raw), len(raw)),
        ]
    )
    np.testing.assert_array_equal(load_torch_bytes(z)['w'], np.arange(64, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------
# edited copies of the fixtures: the file's own key names, non-finite weights, CRC, StyleGAN3


@pytest.fixture(scope='module')
def fx() -> Path:
    for f in ('nvlabs.pkl', 'rosinality.pt', 'tf.pkl'):
        require(FIXTURES / f, 'checkpoint fixtures')
    return FIXTURES


def _ros_copy(fx, tmp_path, edit, name='edited.pt') -> Path:
    from alignjax.io.torch_file import save_torch

    ck = load_torch(fx / 'rosinality.pt')
    ck = {k: dict(v) if isinstance(v, dict) else v for k, v in ck.items() if k != 'args'}
    edit(ck)
    p = tmp_path / name
    save_torch(ck, p)
    return p


def _raises(path, *fragments, absent=(), **kw) -> str:
    import alignjax as aj

    with pytest.raises(CheckpointError) as e:
        aj.load_checkpoint(path, **kw)
    msg = str(e.value)
    assert str(path) in msg, msg
    for f in fragments:
        assert f in msg, (f, msg)
    for f in absent:
        assert f not in msg, (f, msg)
    return msg


def test_rosinality_errors_name_the_files_keys(fx, tmp_path):
    def shape(ck):
        ck['g_ema']['convs.0.conv.weight'] = np.zeros((1, 64, 32, 3, 3), np.float32)

    _raises(
        _ros_copy(fx, tmp_path, shape),
        "g_ema key 'convs.0.conv.weight'",
        '(64, 32, 3, 3)',
        "NVlabs G_ema 'synthesis.b8.conv0.weight'",
    )

    def missing_weight(ck):
        del ck['g']['style.8.weight']

    _raises(
        _ros_copy(fx, tmp_path, missing_weight),
        "g is missing key 'style.8.weight'",
        absent=('belong', 'unexpected', 'style.8.bias', 'mapping.fc'),
    )

    def missing_rgb(ck):
        del ck['g_ema']['to_rgbs.1.conv.weight']

    _raises(_ros_copy(fx, tmp_path, missing_rgb), "g_ema is missing key 'to_rgbs.1.conv.weight'", absent=('belong',))

    def missing_block(ck):
        for k in [k for k in ck['d'] if k.startswith('convs.1.')]:
            del ck['d'][k]

    _raises(_ros_copy(fx, tmp_path, missing_block), "d is missing key 'convs.1.conv1.0.weight'")

    def bad_kernel(ck):
        ck['g_ema']['convs.0.conv.blur.kernel'] = ck['g_ema']['convs.0.conv.blur.kernel'] * 2

    _raises(_ros_copy(fx, tmp_path, bad_kernel), "g_ema key 'convs.0.conv.blur.kernel'", 'resample filter')


def test_nonfinite_weights_are_refused_by_their_file_names(fx, tmp_path):
    import alignjax as aj

    def nan_conv(ck):
        w = ck['g_ema']['convs.0.conv.weight'].copy()
        w[0, 1, 2, 0, 0] = np.nan
        ck['g_ema']['convs.0.conv.weight'] = w

    p = _ros_copy(fx, tmp_path, nan_conv)
    _raises(p, "g_ema key 'convs.0.conv.weight'", '1 of 36864 values are NaN/Inf', 'allow_nonfinite=True')
    with pytest.warns(UserWarning, match=r"g_ema key 'convs\.0\.conv\.weight'"):
        ck = aj.load_checkpoint(p, allow_nonfinite=True)
    assert any('non-finite' in n for n in ck.notes)
    assert np.isnan(np.asarray(ck.nets['G_ema']['params']['synthesis']['b8']['conv0']['weight'])).sum() == 1

    def inf_latent(ck):
        ck['latent_avg'] = np.full_like(ck['latent_avg'], np.inf)

    _raises(_ros_copy(fx, tmp_path, inf_latent, 'inf.pt'), "'latent_avg' (NVlabs G_ema 'mapping.w_avg')")


def test_zip_crc_catches_a_flipped_byte_in_a_tensor(fx, tmp_path):
    """zip .pt files are CRC-checked (legacy .pt / .pkl tensor data has no checksum: see docs/checkpoints.md)."""
    import zipfile

    data = bytearray((fx / 'rosinality.pt').read_bytes())
    with zipfile.ZipFile(fx / 'rosinality.pt') as z:
        info = max((i for i in z.infolist() if '/data/' in i.filename), key=lambda i: i.file_size)
    start = (
        info.header_offset
        + 30
        + struct.unpack_from('<HH', data, info.header_offset + 26)[0]
        + struct.unpack_from('<HH', data, info.header_offset + 26)[1]
    )
    data[start + info.compress_size // 2] ^= 0x10
    p = tmp_path / 'flipped.pt'
    p.write_bytes(bytes(data))
    _raises(p, 'truncated or corrupt', 'CRC')


class _TFWriter:
    """Re-pickles TFNetwork stand-ins as dnnlib.tflib.network.Network objects (the TF pickle layout)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (_TFWriter, (), self.state)


def _tf_copy(fx, tmp_path, monkeypatch, edit) -> Path:
    import types

    from alignjax.io.formats.tf import TF_GLOBALS, TFNetwork
    from alignjax.io.safe_pickle import load_pickle

    def conv(n):
        if isinstance(n, TFNetwork):
            st = dict(n.state)
            st['components'] = {k: conv(v) for k, v in (st.get('components') or {}).items()}
            st['variables'] = [(k, np.array(v)) for k, v in st.get('variables') or []]
            return _TFWriter(st)
        return n

    nets = [conv(n) for n in load_pickle(fx / 'tf.pkl', TF_GLOBALS)]
    edit(dict(zip(('G', 'D', 'Gs'), nets)))
    mod = types.ModuleType('dnnlib.tflib.network')
    mod.Network = _TFWriter
    for name in ('dnnlib', 'dnnlib.tflib'):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib.network', mod)
    _TFWriter.__module__, _TFWriter.__qualname__ = 'dnnlib.tflib.network', 'Network'  # a test-only class
    p = tmp_path / 'tf_edited.pkl'
    p.write_bytes(pickle.dumps(tuple(nets), protocol=4))
    return p


def _tf_vars(net, component=None):
    st = net.state['components'][component].state if component else net.state
    return st['variables']


def test_tf_errors_name_the_files_variables(fx, tmp_path, monkeypatch):
    def shape(nets):
        v = _tf_vars(nets['Gs'], 'synthesis')
        i = next(i for i, (k, _) in enumerate(v) if k == '8x8/Conv0_up/weight')
        v[i] = (v[i][0], np.zeros((3, 3, 32, 64), np.float32))

    _raises(
        _tf_copy(fx, tmp_path, monkeypatch, shape),
        "Gs key 'synthesis/8x8/Conv0_up/weight'",
        "NVlabs G_ema 'synthesis.b8.conv0.weight'",
    )

    def missing(nets):
        v = _tf_vars(nets['G'], 'mapping')
        v[:] = [(k, a) for k, a in v if k != 'Dense7/weight']

    _raises(
        _tf_copy(fx, tmp_path, monkeypatch, missing), "G is missing key 'mapping/Dense7/weight'", absent=('belong',)
    )

    def nan_avg(nets):
        v = _tf_vars(nets['Gs'])
        i = next(i for i, (k, _) in enumerate(v) if k == 'dlatent_avg')
        v[i] = ('dlatent_avg', np.full_like(v[i][1], np.nan))

    _raises(_tf_copy(fx, tmp_path, monkeypatch, nan_avg), "Gs key 'dlatent_avg'", 'NaN/Inf')


def test_stylegan3_pickles_are_refused_clearly(tmp_path, monkeypatch):
    import types

    class Persistent:
        def __init__(self, class_name, params=None, modules=None):
            self.meta = dict(
                type='class',
                version=4,
                module_src='# stub',
                class_name=class_name,
                state={'_parameters': params or {}, '_buffers': {}, '_modules': modules or {}},
            )

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    def _reconstruct_persistent_obj(meta):  # only ever called by pickle.loads in a real torch_utils
        raise AssertionError

    mod = types.ModuleType('torch_utils.persistence')
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = 'torch_utils.persistence'
    _reconstruct_persistent_obj.__qualname__ = '_reconstruct_persistent_obj'
    monkeypatch.setitem(sys.modules, 'torch_utils', types.ModuleType('torch_utils'))
    monkeypatch.setitem(sys.modules, 'torch_utils.persistence', mod)
    w = np.zeros((4, 4), np.float32)

    def g3():
        synth = Persistent(
            'SynthesisNetwork',
            modules={
                'input': Persistent('SynthesisInput', {'weight': w, 'freqs': w}),
                'L0_36_512': Persistent('SynthesisLayer', {'weight': w, 'bias': w[0]}),
            },
        )
        mapping = Persistent('MappingNetwork', modules={'fc0': Persistent('FullyConnectedLayer', {'weight': w})})
        return Persistent('Generator', modules={'synthesis': synth, 'mapping': mapping})

    p = tmp_path / 'stylegan3.pkl'
    p.write_bytes(pickle.dumps({'G': g3(), 'D': None, 'G_ema': g3(), 'augment_pipe': None}, protocol=4))
    _raises(p, 'G_ema is a StyleGAN3 generator, which is not supported')


# ---------------------------------------------------------------------------------------------------------
# export says what it loses


def test_rosinality_export_notes_what_it_loses(fx, tmp_path):
    import dataclasses
    import warnings

    import alignjax as aj

    ck = aj.load_checkpoint(fx / 'nvlabs.pkl')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the default model loses nothing
        assert ck.export_rosinality(tmp_path / 'plain.pt') == []
    cases = {
        'group': (
            dataclasses.replace(ck, d_config=dataclasses.replace(ck.d_config, mbstd_group_size=2)),
            'minibatch-std group 4; this D uses 2',
        ),
        'lr': (
            dataclasses.replace(ck, g_config=dataclasses.replace(ck.g_config, mapping_lr_mul=0.1)),
            'mapping lr multiplier 0.1',
        ),
        'g_clamp': (
            dataclasses.replace(ck, g_config=dataclasses.replace(ck.g_config, conv_clamp=256)),
            'this generator clamps its activations (conv_clamp=256)',
        ),
        'd_clamp': (
            dataclasses.replace(ck, d_config=dataclasses.replace(ck.d_config, conv_clamp=256)),
            'this discriminator clamps its activations (conv_clamp=256)',
        ),
    }
    for name, (model, text) in cases.items():
        with pytest.warns(UserWarning, match=text.replace('(', r'\(').replace(')', r'\)')):
            notes = model.export_rosinality(tmp_path / f'{name}.pt')
        assert len(notes) == 1 and text in notes[0], (name, notes)
