"""Checkpoint formats: the three fixture formats read to the same NVlabs state dicts; torch files without torch."""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from conftest import FIXTURES, require

from alignjax.io.formats import (
    RawCheckpoint,
    default_resample_filter,
    detect_format,
    expected_shapes,
    infer_config,
    read_nvlabs_pkl,
    read_raw,
    read_rosinality_pt,
    read_tf_pkl,
    write_rosinality_pt,
)
from alignjax.io.safe_pickle import CheckpointError
from alignjax.io.torch_file import load_torch, load_torch_bytes, save_torch

FILES = {'nvlabs': 'nvlabs.pkl', 'rosinality': 'rosinality.pt', 'tf': 'tf.pkl'}


@pytest.fixture(scope='module')
def fx() -> Path:
    for f in FILES.values():
        require(FIXTURES / f, 'checkpoint fixtures')  # fails instead of skipping under CI=true
    return FIXTURES


@pytest.fixture(scope='module')
def raws(fx) -> dict[str, RawCheckpoint]:
    return {
        'nvlabs': read_nvlabs_pkl(fx / FILES['nvlabs']),
        'rosinality': read_rosinality_pt(fx / FILES['rosinality']),
        'tf': read_tf_pkl(fx / FILES['tf']),
    }


# ---------------------------------------------------------------------------------------------------------
# fixtures: detection, agreement, config


@pytest.mark.parametrize('fmt', sorted(FILES))
def test_detect_format_from_content(fx, tmp_path, fmt):
    assert detect_format(fx / FILES[fmt]) == fmt
    # the name is irrelevant: same bytes under a misleading name
    alias = tmp_path / 'checkpoint.bin'
    alias.write_bytes((fx / FILES[fmt]).read_bytes())
    assert detect_format(alias) == fmt
    assert read_raw(alias).format == fmt


def test_detect_orbax_and_unknown(tmp_path):
    store = tmp_path / 'store'
    store.mkdir()
    (store / 'alignjax_config.json').write_text('{}')
    assert detect_format(store) == 'orbax'
    with pytest.raises(CheckpointError, match='alignjax_config.json'):
        detect_format(tmp_path)
    junk = tmp_path / 'junk.bin'
    junk.write_bytes(b'\x00\x01 not a checkpoint ' * 10)
    with pytest.raises(CheckpointError, match='junk.bin'):
        detect_format(junk)


@pytest.mark.parametrize('fmt', ['rosinality', 'tf'])
def test_all_formats_give_the_same_nvlabs_state_dicts(raws, fmt):
    ref, got = raws['nvlabs'], raws[fmt]
    assert set(got.nets) == {'G', 'G_ema', 'D'}
    for net in ('G', 'G_ema', 'D'):
        a, b = ref.nets[net], got.nets[net]
        assert list(a) == list(b), (net, sorted(set(a) ^ set(b)))
        for k in a:
            assert a[k].shape == b[k].shape, (net, k, a[k].shape, b[k].shape)
            assert b[k].dtype == np.float32 and b[k].flags.c_contiguous
            if a[k].size:
                assert float(np.abs(a[k] - b[k]).max()) <= 1e-6, (net, k)


def test_nvlabs_layout(raws):
    g, d = raws['nvlabs'].nets['G_ema'], raws['nvlabs'].nets['D']
    expect_g = {
        'mapping.fc0.weight': (64, 64),
        'mapping.fc7.bias': (64,),
        'mapping.w_avg': (64,),
        'synthesis.b4.const': (64, 4, 4),
        'synthesis.b4.resample_filter': (4, 4),
        'synthesis.b4.conv1.weight': (64, 64, 3, 3),
        'synthesis.b4.conv1.noise_strength': (),
        'synthesis.b4.conv1.noise_const': (4, 4),
        'synthesis.b4.conv1.affine.weight': (64, 64),
        'synthesis.b8.conv0.noise_const': (8, 8),
        'synthesis.b32.conv1.noise_const': (32, 32),
        'synthesis.b32.torgb.weight': (3, 64, 1, 1),
        'synthesis.b32.torgb.bias': (3,),
    }
    for k, shape in expect_g.items():
        assert g[k].shape == shape, k
    expect_d = {
        'b32.fromrgb.weight': (64, 3, 1, 1),
        'b32.conv0.weight': (64, 64, 3, 3),
        'b32.conv1.weight': (64, 64, 3, 3),
        'b32.skip.weight': (64, 64, 1, 1),
        'b4.conv.weight': (64, 65, 3, 3),
        'b4.fc.weight': (64, 1024),
        'b4.out.weight': (1, 64),
        'b8.skip.resample_filter': (4, 4),
    }
    for k, shape in expect_d.items():
        assert d[k].shape == shape, k
    assert 'b16.fromrgb.weight' not in d and 'synthesis.b8.skip.weight' not in g
    np.testing.assert_array_equal(g['synthesis.b8.conv0.resample_filter'], default_resample_filter())
    # the schema covers exactly the state dict
    schema = expected_shapes(raws['nvlabs'].config)
    assert list(schema['G']) == list(g) and list(schema['D']) == list(d)


@pytest.mark.parametrize('fmt', sorted(FILES))
def test_config_inferred(raws, fmt):
    cfg = raws[fmt].config
    want = dict(
        resolution=32,
        img_channels=3,
        z_dim=64,
        w_dim=64,
        c_dim=0,
        num_ws=8,
        mapping_layers=8,
        embed_features=None,
        g_channels={4: 64, 8: 64, 16: 64, 32: 64},
        d_channels={4: 64, 8: 64, 16: 64, 32: 64},
        mbstd_group_size=4,
        mbstd_num_channels=1,
        cmap_dim=0,
        d_mapping_layers=0,
        architecture='skip',
        d_architecture='resnet',
        conv_clamp=None,
        mapping_lr_mul=0.01,
    )
    assert {k: cfg[k] for k in want} == want
    if fmt in ('nvlabs', 'tf'):
        assert cfg['channel_base'] == 2048 and cfg['channel_max'] == 64
    assert raws[fmt].format == fmt


def test_extras_and_notes(raws):
    nv = raws['nvlabs']
    assert nv.extra['init_kwargs']['G']['mapping_kwargs'] == {'num_layers': 8}
    assert 'augment_p' not in nv.extra  # augment_pipe=None in the fixture
    ro = raws['rosinality']
    assert ro.extra['args']['latent'] == 64
    assert any('lr_mlp' in n for n in ro.notes)
    np.testing.assert_array_equal(ro.nets['G']['mapping.w_avg'], ro.nets['G_ema']['mapping.w_avg'])


# ---------------------------------------------------------------------------------------------------------
# rosinality export


def test_write_rosinality_roundtrip(raws, tmp_path):
    src = raws['nvlabs']
    out = tmp_path / 'export.pt'
    write_rosinality_pt(out, src.nets, src.config)
    back = read_rosinality_pt(out)
    assert set(back.nets) == set(src.nets)
    for net, sd in src.nets.items():
        assert list(back.nets[net]) == list(sd)
        for k, v in sd.items():
            np.testing.assert_array_equal(back.nets[net][k], v, err_msg=f'{net}.{k}')
    core = [k for k in src.config if k not in ('channel_base', 'channel_max', 'num_fp16_res')]
    assert {k: back.config[k] for k in core} == {k: src.config[k] for k in core}
    # the export holds exactly what the fixture rosinality.pt holds (minus args), bit for bit
    ours, theirs = load_torch(out), load_torch(FIXTURES / FILES['rosinality'])
    assert list(ours) == ['g_ema', 'g', 'd', 'latent_avg']
    for part in ('g_ema', 'g', 'd'):
        assert list(ours[part]) == list(theirs[part]), part
        for k in ours[part]:
            np.testing.assert_array_equal(ours[part][k], theirs[part][k], err_msg=f'{part}.{k}')
    np.testing.assert_array_equal(ours['latent_avg'], theirs['latent_avg'])


def test_rosinality_g_ema_only_without_latent_avg(raws, tmp_path):
    full = tmp_path / 'full.pt'
    write_rosinality_pt(full, raws['nvlabs'].nets, raws['nvlabs'].config)
    ck = load_torch(full)
    only = tmp_path / 'g_ema_only.pt'
    save_torch({'g_ema': ck['g_ema']}, only)
    raw = read_rosinality_pt(only)
    assert list(raw.nets) == ['G_ema']
    assert 'mapping.w_avg' not in raw.nets['G_ema']
    assert any('latent_avg absent' in n for n in raw.notes)
    assert raw.config['d_channels'] is None and raw.config['mbstd_group_size'] is None
    ref = raws['nvlabs'].nets['G_ema']
    assert list(raw.nets['G_ema']) == [k for k in ref if k != 'mapping.w_avg']


def test_shape_and_key_errors_name_the_key(raws, tmp_path):
    full = tmp_path / 'full.pt'
    write_rosinality_pt(full, raws['nvlabs'].nets, raws['nvlabs'].config)
    ck = load_torch(full)

    bad = {k: dict(v) if isinstance(v, dict) else v for k, v in ck.items()}
    bad['g_ema']['convs.1.conv.modulation.weight'] = np.zeros((32, 64), np.float32)
    p = tmp_path / 'bad_shape.pt'
    save_torch(bad, p)
    with pytest.raises(CheckpointError) as e:
        read_rosinality_pt(p)
    msg = str(e.value)
    assert str(p) in msg and 'synthesis.b8.conv1.affine.weight' in msg and '(32, 64)' in msg and '(64, 64)' in msg

    bad = {k: dict(v) if isinstance(v, dict) else v for k, v in ck.items()}
    del bad['d']['final_linear.0.bias']
    p = tmp_path / 'missing.pt'
    save_torch(bad, p)
    with pytest.raises(CheckpointError, match=r"missing key 'final_linear\.0\.bias'") as e:
        read_rosinality_pt(p)
    assert str(p) in str(e.value)

    bad = {k: dict(v) if isinstance(v, dict) else v for k, v in ck.items()}
    bad['g']['surprise.weight'] = np.zeros(3, np.float32)
    p = tmp_path / 'extra.pt'
    save_torch(bad, p)
    with pytest.raises(CheckpointError, match='surprise.weight'):
        read_rosinality_pt(p)


def test_architectures_are_inferred_and_odd_layouts_refused(raws):
    """G/D 'orig' and 'skip' / 'resnet' are read from the layers present (tests/test_architectures.py checks their
    numbers); a layout of none of NVlabs' architectures is refused, naming what it has."""
    g = dict(raws['nvlabs'].nets['G_ema'])
    orig = {k: v for k, v in g.items() if '.torgb' not in k or k.startswith('synthesis.b32.')}
    assert infer_config({'G_ema': orig}, path='x.pkl')['architecture'] == 'orig'
    odd = {k: v for k, v in g.items() if not (k.startswith('synthesis.b8.torgb') or k.startswith('synthesis.b4.torgb'))}
    with pytest.raises(CheckpointError, match=r'ToRGB layers in blocks \[16, 32\].*not an NVlabs'):
        infer_config({'G_ema': odd}, path='x.pkl')
    d = dict(raws['nvlabs'].nets['D'])
    d['b16.fromrgb.weight'] = np.zeros((64, 3, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r'FromRGB layers in blocks \[16, 32\].*not an NVlabs'):
        infer_config({'D': d}, path='x.pkl')
    g3 = {'synthesis.input.affine.weight': np.zeros((4, 64), np.float32)}
    with pytest.raises(CheckpointError, match='StyleGAN3'):
        infer_config({'G': g3}, path='x.pkl')


# ---------------------------------------------------------------------------------------------------------
# torch files without torch


def _sample_obj():
    t = np.arange(24, dtype=np.float32).reshape(4, 6)
    return collections.OrderedDict(
        f32=t,
        view=t[1:, ::2],  # non-contiguous input
        fortran=np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        big_endian=np.arange(5, dtype='>f8'),
        f16=np.array([1.5, -2.0], np.float16),
        bf16=np.array([1.0, 0.5, -3.0], dtype=ml_dtypes.bfloat16),
        i64=np.arange(-3, 3, dtype=np.int64),
        u8=np.arange(4, dtype=np.uint8),
        flag=np.array([True, False]),
        scalar=np.array(0.25, np.float32),
        empty=np.zeros((0, 3), np.float32),
        nested={'a': [1, 2.5, 's', None, True, (3, 4)], 'b': {'deep': np.ones((2, 2), np.float64)}},
        big_int=2**40,
        neg=-7,
        npscalar=np.float32(1.25),
        text='héllo',
    )


def _check_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and b.shape == a.shape
        assert b.dtype == a.dtype.newbyteorder('=') or (b.dtype == a.dtype)
        np.testing.assert_array_equal(np.asarray(b, np.float64), np.asarray(a, np.float64))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _check_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _check_same(x, y)
    elif isinstance(a, np.generic):
        assert b == a.item()
    else:
        assert a == b and type(a) is type(b)


def test_save_torch_load_torch_roundtrip(tmp_path):
    obj = _sample_obj()
    p = tmp_path / 'obj.pt'
    save_torch(obj, p)
    with zipfile.ZipFile(p) as z:
        names = z.namelist()
        assert 'obj/data.pkl' in names and z.read('obj/byteorder') == b'little' and 'obj/version' in names
        # payloads are 64-byte aligned like torch's writer (mmap-able)
        with open(p, 'rb') as f:
            for info in z.infolist():
                if '/data/' in info.filename:
                    f.seek(info.header_offset + 26)
                    n, m = struct.unpack('<HH', f.read(4))
                    assert (info.header_offset + 30 + n + m) % 64 == 0
    back = load_torch(p)
    assert isinstance(back, collections.OrderedDict)
    _check_same(obj, back)
    assert back['bf16'].dtype == ml_dtypes.bfloat16 and back['scalar'].shape == ()
    assert [x.name for x in tmp_path.iterdir()] == ['obj.pt']  # no temp files left


def test_save_torch_is_atomic(tmp_path):
    p = tmp_path / 'keep.pt'
    save_torch({'w': np.ones(3, np.float32)}, p)
    before = p.read_bytes()
    with pytest.raises(CheckpointError, match='object'):
        save_torch({'w': np.ones(3, np.float32), 'bad': object()}, p)
    with pytest.raises(CheckpointError, match='dtype'):
        save_torch({'s': np.array(['a'])}, p)
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ['keep.pt']


def _legacy_bytes() -> tuple[bytes, np.ndarray]:
    """A legacy (pre-1.6) torch.save file of {'a': t[1:, ::2], 'b': t, 'n': 3}, written by hand."""
    t = np.arange(24, dtype=np.float32).reshape(4, 6)

    def X(s):
        b = s.encode()
        return b'X' + struct.pack('<I', len(b)) + b

    def J(v):
        return b'J' + struct.pack('<i', v)

    def tup(items):
        return b'(' + b''.join(items) + b't'

    pid = tup([X('storage'), b'ctorch\nFloatStorage\n', X('9'), X('cpu'), J(24), b'N']) + b'Q'

    def tensor(offset, size, stride):
        return (
            b'ctorch._utils\n_rebuild_tensor_v2\n'
            + tup(
                [
                    pid,
                    J(offset),
                    tup([J(s) for s in size]),
                    tup([J(s) for s in stride]),
                    b'\x89',
                    b'ccollections\nOrderedDict\n)R',
                ]
            )
            + b'R'
        )

    main = (
        b'\x80\x02}(' + X('a') + tensor(6, (3, 3), (6, 2)) + X('b') + tensor(0, (4, 6), (6, 1)) + X('n') + J(3) + b'u.'
    )
    head = b''.join(
        pickle.dumps(x, protocol=2)
        for x in (0x1950A86A20F9469CFC6C, 1001, {'protocol_version': 1001, 'little_endian': True})
    )
    tail = pickle.dumps(['9'], protocol=2) + struct.pack('<q', 24) + t.tobytes()
    return head + main + tail, t


def test_legacy_format_without_torch(tmp_path):
    data, t = _legacy_bytes()
    p = tmp_path / 'legacy.pt'
    p.write_bytes(data)
    out = load_torch(p)
    np.testing.assert_array_equal(out['a'], t[1:, ::2])
    np.testing.assert_array_equal(out['b'], t)
    assert out['n'] == 3
    assert detect_format(p) == 'rosinality'  # a torch.save file
    # truncated storage data
    p.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_torch(p)


# ---------------------------------------------------------------------------------------------------------
# with torch


def _torch_sample(torch):
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        'view': t[1:, ::2],
        'base': t,
        'transposed': t.t(),
        'half': torch.tensor([1.5, -2.0], dtype=torch.float16),
        'bf16': torch.tensor([1.0, 0.5, -3.0], dtype=torch.bfloat16),
        'param': torch.nn.Parameter(torch.full((2, 2), 0.5)),
        'long': torch.arange(5),
        'zero_d': torch.tensor(7.25),
        'bool': torch.tensor([True, False]),
        'od': collections.OrderedDict(x=torch.ones(3, dtype=torch.float64)),
        'meta': [1, 'two', 3.0],
    }


def _assert_matches_torch(torch, out, ref):
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            v = v.detach()
            want = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
            assert out[k].shape == tuple(v.shape), k
            if v.dtype == torch.bfloat16:
                assert out[k].dtype == ml_dtypes.bfloat16
            else:
                assert out[k].dtype == want.dtype, k
            np.testing.assert_array_equal(np.asarray(out[k], np.float64), np.asarray(want, np.float64), err_msg=k)
        elif isinstance(v, dict):
            _assert_matches_torch(torch, out[k], v)
        else:
            assert out[k] == v


@pytest.mark.torch
@pytest.mark.parametrize('zip_format', [False, True], ids=['legacy', 'zip'])
def test_reads_torch_save(tmp_path, zip_format):
    torch = pytest.importorskip('torch')
    ref = _torch_sample(torch)
    p = tmp_path / 't.pt'
    torch.save(ref, p, _use_new_zipfile_serialization=zip_format)
    _assert_matches_torch(torch, load_torch(p), ref)


@pytest.mark.torch
def test_reads_plain_pickle_with_torch_storages(tmp_path):
    torch = pytest.importorskip('torch')
    ref = _torch_sample(torch)
    p = tmp_path / 'plain.pkl'
    p.write_bytes(pickle.dumps(ref, protocol=4))  # storages via torch.storage._load_from_bytes
    _assert_matches_torch(torch, load_torch(p), ref)
    _assert_matches_torch(torch, load_torch_bytes(p.read_bytes()), ref)


@pytest.mark.torch
def test_save_torch_is_weights_only_loadable(tmp_path):
    torch = pytest.importorskip('torch')
    obj = _sample_obj()
    p = tmp_path / 'w.pt'
    save_torch(obj, p)
    back = torch.load(p, weights_only=True)
    assert list(back) == list(obj)
    for k in ('f32', 'view', 'fortran', 'big_endian', 'f16', 'i64', 'u8', 'flag', 'scalar', 'empty'):
        assert isinstance(back[k], torch.Tensor) and tuple(back[k].shape) == obj[k].shape, k
        np.testing.assert_array_equal(back[k].numpy(), obj[k], err_msg=k)
    assert back['bf16'].dtype == torch.bfloat16
    np.testing.assert_array_equal(back['bf16'].float().numpy(), obj['bf16'].astype(np.float32))
    assert back['nested']['a'] == [1, 2.5, 's', None, True, (3, 4)]
    assert back['big_int'] == 2**40 and back['neg'] == -7 and back['text'] == 'héllo'
    assert torch.load(p, weights_only=True, mmap=True)['f32'].sum().item() == obj['f32'].sum()


@pytest.mark.torch
def test_rosinality_export_matches_fixture_under_torch(raws, tmp_path):
    torch = pytest.importorskip('torch')
    out = tmp_path / 'export.pt'
    write_rosinality_pt(out, raws['nvlabs'].nets, raws['nvlabs'].config)
    ours = torch.load(out, weights_only=True)
    theirs = torch.load(FIXTURES / FILES['rosinality'], weights_only=False)
    assert set(ours) == {'g_ema', 'g', 'd', 'latent_avg'}
    for part in ('g_ema', 'g', 'd'):
        assert list(ours[part]) == list(theirs[part]), part
        for k in ours[part]:
            assert ours[part][k].shape == theirs[part][k].shape, (part, k)
            assert torch.equal(ours[part][k], theirs[part][k]), (part, k)
    assert torch.equal(ours['latent_avg'], theirs['latent_avg'])


# ---------------------------------------------------------------------------------------------------------
# other architectures (synthetic): inference is driven by the tensors, not by the fixture's numbers


def _synthetic(cfg: dict, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    nets = {}
    for name, schema in expected_shapes(cfg).items():
        sd = {
            k: (default_resample_filter() if shape is None else rng.standard_normal(shape).astype(np.float32))
            for k, shape in schema.items()
        }
        nets['G_ema' if name == 'G' else name] = sd
    return nets


def _cfg(**over):
    cfg = dict(
        resolution=64,
        img_channels=1,
        z_dim=24,
        w_dim=16,
        c_dim=0,
        num_ws=10,
        mapping_layers=2,
        embed_features=None,
        g_channels={4: 32, 8: 32, 16: 16, 32: 8, 64: 8},
        d_channels={4: 16, 8: 16, 16: 8, 32: 8, 64: 4},
        mbstd_group_size=None,
        mbstd_num_channels=2,
        cmap_dim=0,
        d_mapping_layers=0,
        architecture='skip',
        d_architecture='resnet',
        conv_clamp=None,
        mapping_lr_mul=0.01,
    )
    cfg.update(over)
    return cfg


def test_infer_config_other_shapes():
    cfg = _cfg()
    got = infer_config(_synthetic(cfg), hints={'mbstd_group_size': None})
    assert got == cfg
    cond = _cfg(c_dim=5, embed_features=12, cmap_dim=16, d_mapping_layers=3, mbstd_group_size=8)
    nets = _synthetic(cond)
    assert nets['G_ema']['mapping.fc0.weight'].shape == (16, 24 + 12)
    assert nets['D']['mapping.fc0.weight'].shape == (16, 16) and nets['D']['b4.out.weight'].shape == (16, 16)
    assert infer_config(nets, hints={'mbstd_group_size': 8}) == cond


def test_rosinality_roundtrip_other_shapes(tmp_path):
    cfg = _cfg(mbstd_num_channels=1, mbstd_group_size=4)
    nets = _synthetic(cfg, seed=1)
    nets['G'] = {k: (v if k.endswith('resample_filter') else v + 1) for k, v in nets['G_ema'].items()}
    p = tmp_path / 'r64.pt'
    with pytest.warns(UserWarning, match='single latent_avg'):
        write_rosinality_pt(p, nets, cfg)
    nets['G']['mapping.w_avg'] = nets['G_ema']['mapping.w_avg']  # one latent_avg in this format
    write_rosinality_pt(p, nets, cfg)
    raw = read_rosinality_pt(p)
    assert {k: raw.config[k] for k in cfg} == cfg
    for net, sd in nets.items():
        assert set(raw.nets[net]) == set(sd)
        for k, v in sd.items():
            np.testing.assert_array_equal(raw.nets[net][k], v, err_msg=f'{net}.{k}')
    ros = load_torch(p)
    assert ros['g_ema']['convs.6.conv.blur.kernel'].shape == (4, 4)  # b64.conv0
    assert ros['g_ema']['noises.noise_8'].shape == (1, 1, 64, 64)  # b64.conv1
    assert ros['d']['convs.4.skip.1.weight'].shape == (16, 16, 1, 1)  # b8.skip
    with pytest.raises(CheckpointError, match='conditional'):
        cond = _cfg(c_dim=5, embed_features=12, cmap_dim=16, d_mapping_layers=3)
        write_rosinality_pt(tmp_path / 'c.pt', _synthetic(cond), cond)
