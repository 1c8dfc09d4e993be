"""Loader tests: sources, PIL modes, bad files, resumable state, sharding, export."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from alignjax.data import (
    BadImageError,
    EmptyDatasetError,
    decode_image,
    make_dataset,
    make_loader,
    parse_spec,
)
from alignjax.data.export import export


def _save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _rgb_image(seed, size=(40, 30)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / 'imgs'
    for i in range(12):
        _save(root / f'sub{i % 2}' / f'{i:03d}.png', _rgb_image(i))
    (root / 'notes.txt').write_text('not an image and not an image extension: ignored')
    return root


def _loader(ds, **kw):
    kw.setdefault('seed', 0)
    kw.setdefault('shard_index', 0)
    kw.setdefault('shard_count', 1)
    return make_loader(ds, **kw)


# ---------------------------------------------------------------------------- specs


def test_parse_spec(tmp_path):
    assert parse_spec('tfds:mnist').split == 'train'
    s = parse_spec('tfds:celeb_a/1.0:train[:10%]?label_key=none')
    assert (s.kind, s.target, s.split, s.options) == ('tfds', 'celeb_a/1.0', 'train[:10%]', {'label_key': 'none'})
    s = parse_spec('proc:toons?seed=1&n=500')
    assert (s.kind, s.target, s.options) == ('proc', 'toons', {'seed': '1', 'n': '500'})
    assert parse_spec(str(tmp_path)).kind == 'folder'
    assert parse_spec('/x/y.zip').kind == 'zip'
    with pytest.raises(ValueError, match='cannot tell'):
        parse_spec('/no/such/thing')
    with pytest.raises(ValueError, match='unknown option'):
        make_dataset('proc:faces?bogus=1', 16)
    with pytest.raises(ValueError, match='unknown procedural domain'):
        make_dataset('proc:dragons', 16)


# ---------------------------------------------------------------------------- PIL modes


def _mode_images():
    g = np.full((24, 36), 100, np.uint8)
    out = {
        'L': Image.fromarray(g),
        '1': Image.fromarray(g).convert('1', dither=Image.Dither.NONE),
        'LA': Image.merge('LA', [Image.fromarray(g), Image.new('L', (36, 24), 255)]),
        'RGBA': Image.new('RGBA', (36, 24), (10, 200, 30, 255)),
        'RGBA-clear': Image.new('RGBA', (36, 24), (10, 200, 30, 0)),
        'P': Image.new('RGB', (36, 24), (200, 20, 20)).convert('P', palette=Image.Palette.ADAPTIVE),
        'I;16': Image.fromarray(np.full((24, 36), 32896, np.uint16)),
        'I': Image.fromarray(np.full((24, 36), 65535, np.int32)),
        'F': Image.fromarray(np.full((24, 36), 0.5, np.float32)),
        'CMYK': Image.new('CMYK', (36, 24), (0, 255, 255, 0)),
        'YCbCr': Image.new('RGB', (36, 24), (0, 0, 255)).convert('YCbCr'),
    }
    pt = Image.new('P', (36, 24), 0)
    pt.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pt.info['transparency'] = 0
    out['P-transparent'] = pt
    return out


EXPECT = {
    'L': (100, 100, 100),
    '1': (0, 0, 0),  # 100 < 128 thresholds to black
    'LA': (100, 100, 100),
    'RGBA': (10, 200, 30),
    'RGBA-clear': (255, 255, 255),  # transparent -> white background
    'P': (200, 20, 20),
    'I;16': (128, 128, 128),  # 32896 / 257, not clipped to 255
    'I': (255, 255, 255),
    'F': (128, 128, 128),  # [0, 1] floats scaled
    'CMYK': (255, 0, 0),
    'YCbCr': (0, 0, 255),
    'P-transparent': (255, 255, 255),
}


@pytest.mark.parametrize('mode', sorted(EXPECT))
def test_pil_modes_convert(mode):
    img = _mode_images()[mode]
    arr = decode_image(img, 16)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    np.testing.assert_allclose(arr[8, 8].astype(int), EXPECT[mode], atol=3)


def test_modes_through_files(tmp_path):
    """Odd modes saved to disk (PNG 16-bit, CMYK JPEG, TIFF float) load via a folder."""
    root = tmp_path / 'modes'
    ims = _mode_images()
    _save(root / 'a16.png', ims['I;16'])
    _save(root / 'cmyk.jpg', ims['CMYK'], quality=95)
    _save(root / 'float.tif', ims['F'])
    _save(root / 'la.png', ims['LA'])
    _save(root / 'p.gif', ims['P-transparent'])
    ds = make_dataset(f'folder:{root}', 8)
    assert len(ds) == 5
    for i in range(len(ds)):
        x = ds[i]['image']
        assert x.shape == (8, 8, 3) and x.dtype == np.uint8


def test_center_crop_and_exif(tmp_path):
    # 60x20: red bands outside the centred 20x20 square must disappear.
    a = np.zeros((20, 60, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:40] = (0, 255, 0)
    a[:, 40:] = (255, 0, 0)
    out = decode_image(Image.fromarray(a), 10)
    assert (out[..., 1] > 200).all() and (out[..., 0] < 40).all()
    # EXIF orientation 6 (rotate 90 CW): a tall image stored sideways.
    b = np.zeros((20, 40, 3), np.uint8)
    b[:, :20] = 255  # left half white when stored; top half after rotation
    im = Image.fromarray(b)
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format='jpeg', exif=exif, quality=95)
    out = decode_image(buf.getvalue(), 20)
    # displayed upright the image is 20x40 with its top half white; the centred
    # square crop therefore shows white above, black below
    assert out[:8].mean() > 200 and out[12:].mean() < 60


# ---------------------------------------------------------------------------- sources


def test_folder_batches(folder):
    ds = make_dataset(f'folder:{folder}', 16)
    assert len(ds) == 12 and ds.resolution == 16 and ds.c_dim == 0 and ds.name == 'imgs'
    assert ds.in_memory  # small: held in memory as uint8
    it = _loader(ds, batch_size=5)
    b = next(it)
    assert b['image'].shape == (5, 16, 16, 3) and b['image'].dtype == np.uint8
    assert b['label'].shape == (5, 0) and b['label'].dtype == np.float32


def test_streaming_equals_in_memory(folder):
    a = make_dataset(str(folder), 16, in_memory=True)
    b = make_dataset(str(folder), 16, in_memory=False)
    assert not b.in_memory
    for i in (0, 5, 11):
        np.testing.assert_array_equal(a[i]['image'], b[i]['image'])


def _nvlabs_zip(path, n=10, res=12, labels=True):
    with zipfile.ZipFile(path, 'w') as z:
        rows = []
        for i in range(n):
            name = f'{i // 1000:05d}/img{i:08d}.png'
            buf = io.BytesIO()
            _rgb_image(100 + i, (res, res)).save(buf, format='png')
            z.writestr(name, buf.getvalue())
            rows.append([name, i % 3])
        z.writestr('dataset.json', json.dumps({'labels': rows if labels else None}))
    return path


def test_zip_with_labels(tmp_path):
    z = _nvlabs_zip(tmp_path / 'ds.zip')
    ds = make_dataset(f'zip:{z}', 12)
    assert (len(ds), ds.c_dim, ds.name) == (10, 3, 'ds')
    np.testing.assert_array_equal(ds[4]['label'], [0, 1, 0])
    b = next(_loader(ds, batch_size=4))
    assert b['image'].shape == (4, 12, 12, 3) and b['label'].shape == (4, 3)
    assert make_dataset(f'zip:{z}?labels=0', 12).c_dim == 0
    assert make_dataset(str(_nvlabs_zip(tmp_path / 'nl.zip', labels=False)), 12).c_dim == 0


def test_xflip_and_max_images(folder):
    ds = make_dataset(str(folder), 16, xflip=True)
    assert len(ds) == 24
    np.testing.assert_array_equal(ds[12 + 3]['image'], ds[3]['image'][:, ::-1])
    sub = make_dataset(str(folder), 16, max_images=5)
    sub2 = make_dataset(str(folder), 16, max_images=5)
    assert len(sub) == 5
    assert [sub.raw_index(i) for i in range(5)] == [sub2.raw_index(i) for i in range(5)]


def test_proc_source():
    ds = make_dataset('proc:toons?seed=3&n=40', 16)
    assert (len(ds), ds.name, ds.c_dim) == (40, 'proc-toons', 0)
    b = next(_loader(ds, batch_size=8))
    assert b['image'].shape == (8, 16, 16, 3) and b['image'].dtype == np.uint8
    # on-the-fly rendering equals the in-memory copy, and is deterministic
    lazy = make_dataset('proc:toons?seed=3&n=40', 16, in_memory=False)
    np.testing.assert_array_equal(lazy[7]['image'], ds[7]['image'])
    big = make_dataset('proc:faces', 32)
    assert len(big) == 70000 and not big.in_memory
    assert make_dataset('proc:faces?n=10&cond=1', 16).c_dim == 18
    ann = ds.annotations([7])
    np.testing.assert_array_equal(ann['image'][0], ds[7]['image'])


def test_tfds_mock():
    tfds = pytest.importorskip('tensorflow_datasets')
    with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = make_dataset('tfds:mnist:train', 16)
        assert (len(ds), ds.c_dim, ds.name) == (10, 10, 'mnist')
        b = next(_loader(ds, batch_size=4))
        assert b['image'].shape == (4, 16, 16, 3) and b['image'].dtype == np.uint8
        assert b['label'].shape == (4, 10) and np.all(b['label'].sum(1) == 1)
        assert make_dataset('tfds:mnist:train?label_key=none', 16).c_dim == 0


def test_core_import_needs_no_tensorflow():
    code = (
        "import sys, alignjax.data as d; d.make_dataset('proc:faces?n=4', 16)[0];"
        "bad = [m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules];"
        'print(bad); sys.exit(1 if bad else 0)'
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------- bad files


def _bad_folder(tmp_path):
    root = tmp_path / 'bad'
    for i in range(6):
        _save(root / f'ok{i}.png', _rgb_image(i, (20, 20)))
    (root / 'zero.jpg').write_bytes(b'')
    (root / 'text.png').write_bytes(b'this is not a png')
    good = io.BytesIO()
    _rgb_image(99, (64, 64)).save(good, format='png')
    (root / 'truncated.png').write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    return root


def test_bad_file_fail_fast_names_file(tmp_path):
    root = _bad_folder(tmp_path)
    with pytest.raises(BadImageError) as e:
        make_dataset(str(root), 16)
    assert str(root / 'text.png') in str(e.value) and 'skip' in str(e.value)
    # a truncated file passes the header check; the read that meets it names it
    os.remove(root / 'text.png')
    os.remove(root / 'zero.jpg')
    ds = make_dataset(str(root), 16, in_memory=False)
    k = [i for i in range(len(ds)) if 'truncated' in ds.describe(i)][0]
    with pytest.raises(BadImageError, match='truncated.png'):
        ds[k]
    with pytest.raises(BadImageError, match='truncated.png'):
        make_dataset(str(root), 16, in_memory=True)


def test_bad_file_skip_counts(tmp_path, capfd):
    root = _bad_folder(tmp_path)
    ds = make_dataset(str(root), 16, bad_file_policy='skip')  # in memory: full decode
    assert len(ds) == 6 and ds.num_bad == 3
    err = capfd.readouterr().err
    assert 'skipped 3 bad file(s)' in err and 'zero.jpg' in err and 'truncated.png' in err
    # streaming: the truncated file is met lazily, replaced by the next good image, counted
    lazy = make_dataset(str(root), 16, bad_file_policy='skip', in_memory=False)
    assert len(lazy) == 7 and lazy.num_bad == 2
    batches = list(_loader(lazy, batch_size=7, num_epochs=1, shuffle=False))
    assert len(batches) == 1 and batches[0]['image'].shape == (7, 16, 16, 3)
    assert lazy.num_bad == 3 and 'truncated.png' in capfd.readouterr().err


def test_bad_zip_member(tmp_path):
    z = tmp_path / 'b.zip'
    with zipfile.ZipFile(z, 'w') as zf:
        buf = io.BytesIO()
        _rgb_image(0, (8, 8)).save(buf, format='png')
        zf.writestr('a.png', buf.getvalue())
        zf.writestr('b.png', b'garbage')
    with pytest.raises(BadImageError, match=r'b\.zip:b\.png'):
        make_dataset(str(z), 8)
    assert len(make_dataset(str(z), 8, bad_file_policy='skip')) == 1


def test_empty_dataset(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(EmptyDatasetError, match='no images'):
        make_dataset(str(tmp_path / 'empty'), 16)
    (tmp_path / 'allbad').mkdir()
    (tmp_path / 'allbad' / 'x.png').write_bytes(b'nope')
    with pytest.raises(EmptyDatasetError, match='bad'):
        make_dataset(str(tmp_path / 'allbad'), 16, bad_file_policy='skip')
    with pytest.raises(FileNotFoundError):
        make_dataset(f'folder:{tmp_path / "missing"}', 16)


# ---------------------------------------------------------------------------- loader


def test_state_save_restore_identical_batches():
    ds = make_dataset('proc:faces?n=23', 16)  # odd size: batches straddle epochs
    it = _loader(ds, batch_size=5, seed=7)
    for _ in range(6):
        next(it)
    state = it.get_state()
    json.loads(state.decode())  # JSON-serialisable bytes
    expect = [next(it) for _ in range(8)]
    it2 = _loader(ds, batch_size=5, seed=7)
    it2.set_state(state)
    got = [next(it2) for _ in range(8)]
    for a, b in zip(expect, got):
        np.testing.assert_array_equal(a['image'], b['image'])
    # a different seed gives a different order; a different dataset is refused
    other = next(_loader(ds, batch_size=5, seed=8))
    assert not np.array_equal(other['image'], _loader(ds, batch_size=5, seed=7).__next__()['image'])
    with pytest.raises(ValueError):
        _loader(make_dataset('proc:faces?n=24', 16), batch_size=5, seed=7).set_state(state)


def test_epochs_cover_dataset_and_reshuffle():
    ds = make_dataset('proc:faces?n=12&cond=1', 16)
    it = _loader(ds, batch_size=4, seed=0, num_epochs=2)
    rows = [tuple(r) for b in it for r in b['label'].round(5)]
    assert len(rows) == 24
    e0, e1 = rows[:12], rows[12:]
    assert len(set(e0)) == 12 and set(e0) == set(e1) and e0 != e1


def test_eight_shards_disjoint_and_cover_epoch():
    ds = make_dataset('proc:faces?n=64&cond=1', 16)
    seen = []
    for s in range(8):
        it = _loader(ds, batch_size=4, seed=3, shard_index=s, shard_count=8, num_epochs=1)
        rows = [tuple(r) for b in it for r in b['label'].round(5)]
        assert len(rows) == 8
        seen.append(set(rows))
    union = set().union(*seen)
    assert len(union) == 64 and sum(len(s) for s in seen) == 64


def test_default_shard_is_jax_process_and_batches_split_over_8_devices():
    import jax

    ds = make_dataset('proc:faces?n=32', 16)
    it = make_loader(ds, batch_size=16, seed=0)  # shard from jax.process_index/count
    b = next(it)
    assert jax.device_count() == 8
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ('data',))
    x = jax.device_put(b['image'], jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data')))
    shards = [np.asarray(s.data) for s in x.addressable_shards]
    assert len(shards) == 8 and all(s.shape == (2, 16, 16, 3) for s in shards)
    np.testing.assert_array_equal(np.concatenate(shards), b['image'])


@pytest.mark.slow
def test_worker_processes_resume(folder):
    ds = make_dataset(str(folder), 16, in_memory=False)
    it = _loader(ds, batch_size=3, worker_count=2)
    for _ in range(3):
        next(it)
    st = it.get_state()
    expect = [next(it)['image'] for _ in range(4)]
    it2 = _loader(ds, batch_size=3, worker_count=2)
    it2.set_state(st)
    for e in expect:
        np.testing.assert_array_equal(next(it2)['image'], e)


# ---------------------------------------------------------------------------- export


def test_export_roundtrip(tmp_path):
    out = tmp_path / 'toons.zip'
    export('proc:toons?seed=2&n=50', str(out), n=12, resolution=32, labels='factors', annotations=True, verbose=False)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert '00000/img00000011.png' in names and 'dataset.json' in names
        ann = np.load(io.BytesIO(z.read('annotations.npz')))
        assert ann['landmarks'].shape == (12, 6, 2) and ann['mask'].shape == (12, 32, 32)
    ds = make_dataset(f'zip:{out}', 32)
    ref = make_dataset('proc:toons?seed=2&n=50', 32)
    assert len(ds) == 12 and ds.c_dim == 18
    for i in (0, 11):
        np.testing.assert_array_equal(ds[i]['image'], ref[i]['image'])  # PNG is lossless
    # the CLI entry point, with class labels from a labelled zip
    src = _nvlabs_zip(tmp_path / 'src.zip', n=5, res=20)
    from alignjax.cli.export_data import main

    main(['--source', f'zip:{src}', '--n', '5', '--res', '16', '--out', str(tmp_path / 'o.zip')])
    back = make_dataset(str(tmp_path / 'o.zip'), 16)
    assert len(back) == 5 and back.c_dim == 3


# ---------------------------------------------------------------------------- command lines (alignjax/cli)


def _help(main, capsys, first_line):
    with pytest.raises(SystemExit) as e:
        main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and first_line in out and 'flags:' in out
    return out


def _flag_error(main, argv, capsys, code=2):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith('error:')]
    assert e.value.code == code and len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def test_export_cli_help_and_flag_errors(tmp_path, capsys):
    from alignjax.cli.export_data import main

    out = _help(main, capsys, 'Write any dataset spec as an NVlabs')
    assert '--max-images' in out and '--skip-bad' in out
    zip_ = str(tmp_path / 'a.zip')
    assert '--bogus: no such flag' in _flag_error(main, ['--source', 'proc:faces', '--out', zip_, '--bogus'], capsys)
    assert '--source is required' in _flag_error(main, ['--out', zip_], capsys)
    assert '--labels' in _flag_error(main, ['--source', 'proc:faces', '--out', zip_, '--labels', 'x'], capsys)
    assert (
        _flag_error(main, ['--source', 'proc:faces', '--out', zip_, '--resolution', '0'], capsys, 1)
        == 'error: --resolution must be >= 1'
    )
    assert 'need a proc: source' in _flag_error(
        main, ['--source', f'folder:{tmp_path}', '--out', zip_, '--annotations'], capsys, 1
    )
    assert not (tmp_path / 'a.zip').exists()


def test_contact_sheet_cli_resolution_spellings(tmp_path, capsys):
    """argparse's nargs='+' spelling (--resolution 8 4) still works, as do comma lists and repeated flags."""
    from alignjax.cli._common import spread_values
    from alignjax.cli.contact_sheet import main
    from alignjax.data.contact_sheet import contact_sheet

    _help(main, capsys, 'Contact sheet of the procedural domains')
    assert spread_values(['--resolution', '8', '4', '--rows', '1'], {'resolution'}) == [
        '--resolution',
        '8',
        '--resolution=4',
        '--rows',
        '1',
    ]
    assert spread_values(['--res=8', '4'], {'res'}) == ['--res=8', '--res=4']
    want = contact_sheet(1, 0, (8, 4), 8)
    base = ['--rows', '1', '--display', '8']
    for i, spelling in enumerate(
        [
            ['--resolution', '8', '4'],
            ['--resolution', '8,4'],
            ['--resolution=8', '4'],
            ['--resolution', '8', '--resolution', '4'],
            ['--res', '8', '4'],
        ]
    ):
        out = tmp_path / f's{i}.png'
        assert main(spelling + base + ['--out', str(out)]) == 0, spelling
        np.testing.assert_array_equal(np.asarray(Image.open(out)), want, err_msg=str(spelling))
    assert capsys.readouterr().err.count('warning: --res is deprecated') == 1
    assert main(base + ['--out', str(tmp_path / 'd.png')]) == 0  # default 64,32
    assert np.asarray(Image.open(tmp_path / 'd.png')).shape == contact_sheet(1, 0, (64, 32), 8).shape
    assert _flag_error(main, ['--resolution', '8', 'x'] + base, capsys, 1).startswith("error: --resolution '8,x'")
    assert 'unexpected argument' in _flag_error(main, base + ['stray', '--resolution', '8'], capsys)
    assert 'must be >= 1' in _flag_error(main, ['--resolution', '0'] + base, capsys, 1)
