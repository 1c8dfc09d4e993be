"""Distribution metrics: FD vs scipy, KID vs a brute-force loop, precision/recall vs a brute-force numpy
reference, FID Inception-v3 (fake pytorch-fid state dict written torch-free, key/shape refusal, resize and
pooling against their definitions, a torch re-implementation with the same weights), compute_metrics and the
`python -m alignjax.metrics` CLI (results and error paths)."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alignjax as aj
from alignjax.cli import metrics as cli
from alignjax.io.safe_pickle import CheckpointError
from alignjax.io.torch_file import save_torch
from alignjax.metrics import (
    FeatureStats,
    MetricsError,
    PixelProjection,
    compute_metrics,
    fd_from_features,
    frechet_distance,
    generate_images,
    kid,
    kid_subsets,
    knn_radii,
    mean_cov,
    parse_metric,
    precision_recall,
    to_unit_range,
)
from alignjax.metrics import compute as C
from alignjax.metrics import inception as I

ROOT = Path(__file__).resolve().parents[1]
DEMO_PARENT = ROOT / 'assets' / 'demo' / 'parent'


def _features(seed, n, d, shift=0.0, scale=1.0):
    rng = np.random.RandomState(seed)
    mix = rng.randn(d, d) / np.sqrt(d)
    return ((rng.randn(n, d) @ mix) * scale + shift).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Fréchet distance.


def _fd_scipy(a, b):
    import scipy.linalg

    a, b = a.astype(np.float64), b.astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.square(m1 - m2).sum() + np.trace(s1 + s2 - 2 * np.real(covmean)))


@pytest.mark.parametrize('d,shift', [(16, 0.0), (64, 3.0)])
def test_fd_matches_scipy_sqrtm(d, shift):
    pytest.importorskip('scipy')
    a = _features(0, 400, d, scale=1.0)
    b = _features(1, 300, d, shift=shift * 0.1, scale=1.3) + shift
    ref = _fd_scipy(a, b)
    assert abs(fd_from_features(a, b) - ref) <= 1e-4 * abs(ref)
    assert ref > 0.1


def test_feature_stats_float64_and_batched():
    # a large common offset: naive float32 E[x x^T] - mu mu^T would lose the covariance
    x = _features(2, 1000, 8) * 0.01 + 1000.0
    st = FeatureStats(max_items=900)
    for s in range(0, 1000, 128):
        st.append(x[s : s + 128])
    assert st.num_items == 900 and st.get_all().shape == (900, 8)
    mu, cov = st.get_mean_cov()
    ref = x[:900].astype(np.float64)
    np.testing.assert_allclose(mu, ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(ref, rowvar=False, bias=True), rtol=1e-6, atol=1e-12)


def test_fd_identical_zero_and_singular():
    a = _features(3, 200, 32)
    assert abs(fd_from_features(a, a)) < 1e-9
    few = _features(4, 20, 64)  # D > N: singular covariances stay real and finite
    assert abs(fd_from_features(few, few)) < 1e-10 * np.trace(mean_cov(few)[1])
    assert np.isfinite(fd_from_features(few, _features(5, 20, 64)))
    # closed form for diagonal covariances: sum (sqrt(s1) - sqrt(s2))^2 + ||dmu||^2
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    fd = frechet_distance(np.zeros(3), np.diag(s1), np.ones(3), np.diag(s2))
    assert abs(fd - (3 + np.square(np.sqrt(s1) - np.sqrt(s2)).sum())) < 1e-12


# ----------------------------------------------------------------------------------------------------------
# KID.


def _mmd_loop(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, by explicit loops."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    m, d = len(x), x.shape[1]
    k = lambda a, b: (float(a @ b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_brute_force_loop():
    real, gen = _features(6, 50, 6), _features(7, 40, 6, shift=0.3)
    ir, ig = kid_subsets(len(real), len(gen), num_subsets=3, max_subset_size=25, seed=1)
    assert ir.shape == ig.shape == (3, 25)
    assert all(len(set(r)) == 25 for r in ir) and ir.max() < 50 and ig.max() < 40
    ref = np.mean([_mmd_loop(gen[g], real[r]) for r, g in zip(ir, ig)])
    got = kid(real, gen, num_subsets=3, max_subset_size=25, seed=1)
    assert abs(got - ref) <= 1e-5 * abs(ref) + 1e-7
    # subsets as large as the sets: every subset is a permutation, so KID is the full-set MMD^2
    full = kid(real[:40], gen, num_subsets=2, max_subset_size=1000)
    assert abs(full - _mmd_loop(gen, real[:40])) <= 1e-5 * abs(full)


def test_kid_same_distribution_near_zero():
    a, b = _features(8, 600, 16), _features(9, 600, 16)
    b = b @ np.linalg.qr(np.random.RandomState(0).randn(16, 16))[0].astype(np.float32)  # not the same mixing
    same = kid(a, _features(8, 1200, 16)[600:], num_subsets=20, max_subset_size=300)
    far = kid(a, a + 1.0, num_subsets=20, max_subset_size=300)
    assert abs(same) < 0.05 * far and far > 0


# ----------------------------------------------------------------------------------------------------------
# Precision / recall.


def _pr_reference(real, gen, k=3):
    real, gen = real.astype(np.float64), gen.astype(np.float64)
    dist = lambda a, b: np.sqrt(np.square(a[:, None, :] - b[None, :, :]).sum(-1))  # noqa: E731
    out = {}
    for name, manifold, probes in (('precision', real, gen), ('recall', gen, real)):
        radii = np.sort(dist(manifold, manifold), axis=1)[:, k]
        out[name] = float((dist(probes, manifold) <= radii[None, :]).any(1).mean())
    return out


@pytest.mark.parametrize('rows,cols', [(2048, 10000), (32, 50)])
def test_precision_recall_matches_brute_force(rows, cols):
    real = _features(10, 230, 5)
    gen = _features(11, 170, 5, shift=0.4, scale=0.7)
    ref = _pr_reference(real, gen)
    got = precision_recall(real, gen, k=3, row_batch_size=rows, col_batch_size=cols)
    assert got == ref, (got, ref)
    assert 0.05 < ref['precision'] < 0.95 and 0.05 < ref['recall'] < 0.95  # not a trivial case
    d = np.sqrt(np.square(real[:, None].astype(np.float64) - real[None]).sum(-1))
    np.testing.assert_allclose(np.sqrt(knn_radii(real, 3, rows, cols)), np.sort(d, 1)[:, 3], rtol=1e-4)


def test_precision_recall_edge_cases():
    a = _features(12, 300, 8)
    assert precision_recall(a, a) == {'precision': 1.0, 'recall': 1.0}
    assert precision_recall(a, a + 100.0) == {'precision': 0.0, 'recall': 0.0}
    # generated samples collapsed onto a few real points: precise, not diverse
    pr = precision_recall(a, np.repeat(a[:5], 20, 0) + 1e-3)
    assert pr['precision'] == 1.0 and pr['recall'] < 0.2


# ----------------------------------------------------------------------------------------------------------
# Inception: architecture table, file round trip, refusals, resize and pooling.


def test_inception_state_dict_table():
    t = I.inception_state_dict_shapes()
    assert len(t) == 94 * 5 + 2  # 94 BasicConv2d (conv weight + 4 BN tensors) and the fc
    # torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696) and with a
    # 1008-class fc (+8 x 2049) the FID network has 23,850,960.
    assert sum(int(np.prod(s)) for k, s in t.items() if 'running' not in k) == 23_850_960
    assert t['Conv2d_1a_3x3.conv.weight'] == (32, 3, 3, 3)
    assert t['Mixed_5b.branch_pool.conv.weight'] == (32, 192, 1, 1)
    assert t['Mixed_6b.branch7x7dbl_2.conv.weight'] == (128, 128, 7, 1)
    assert t['Mixed_6e.branch7x7_2.conv.weight'] == (192, 192, 1, 7)
    assert t['Mixed_7a.branch7x7x3_4.conv.weight'] == (192, 192, 3, 3)
    assert t['Mixed_7c.branch3x3dbl_1.conv.weight'] == (448, 2048, 1, 1)
    assert t['Mixed_7c.branch3x3dbl_3b.bn.running_var'] == (384,)
    assert t['fc.weight'] == (1008, 2048)


@pytest.fixture(scope='module')
def fake_inception(tmp_path_factory):
    sd = I.random_inception(0)
    path = tmp_path_factory.mktemp('inc') / 'pt_inception-fake.pth'
    save_torch(sd, path)
    return sd, path, I.load_inception(path)


def _images(n=2, res=32, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, res, res, 3)).astype(np.uint8)


def test_inception_loads_fake_file_and_runs(fake_inception):
    sd, path, inc = fake_inception
    assert inc.resolution is None
    np.testing.assert_array_equal(
        np.asarray(inc.params['Mixed_6b']['branch7x7_2']['kernel']),
        sd['Mixed_6b.branch7x7_2.conv.weight'].transpose(2, 3, 1, 0),
    )
    x = _images()
    out = inc(x)
    f = np.asarray(out['features'])
    assert f.shape == (2, 2048) and np.asarray(out['logits']).shape == (2, 1008)
    assert np.isfinite(f).all() and f.std() > 1e-3 and np.abs(f[0] - f[1]).max() > 1e-4
    # uint8 in [0, 255] and floats in [-1, 1] map to the same network input
    u = np.array([[[[0, 128, 255]]]], np.uint8)
    np.testing.assert_allclose(np.asarray(to_unit_range(u)), [[[[-1, 128 / 127.5 - 1, 1]]]], atol=1e-7)
    f = (u / 127.5 - 1).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(to_unit_range(f)), f)


def test_inception_refuses_wrong_state_dicts(fake_inception, tmp_path):
    sd = fake_inception[0]
    bad = dict(sd)
    del bad['Mixed_6c.branch7x7dbl_3.bn.running_mean']
    with pytest.raises(CheckpointError, match=r"missing key 'Mixed_6c\.branch7x7dbl_3\.bn\.running_mean'"):
        I.inception_from_state_dict(bad)
    bad = dict(sd)
    bad['Mixed_5d.branch5x5_2.conv.weight'] = np.zeros((64, 48, 3, 3), np.float32)
    with pytest.raises(
        CheckpointError,
        match=r"'Mixed_5d\.branch5x5_2\.conv\.weight' has shape \(64, 48, 3, 3\), "
        r'expected \(64, 48, 5, 5\)',
    ):
        I.inception_from_state_dict(bad)
    bad = dict(sd, **{'AuxLogits.fc.weight': np.zeros((1000, 768), np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected key 'AuxLogits\.fc\.weight'"):
        I.inception_from_state_dict(bad)
    bad = dict(sd, **{'fc.weight': np.zeros((1000, 2048), np.float32), 'fc.bias': np.zeros(1000, np.float32)})
    with pytest.raises(CheckpointError, match='torchvision'):
        I.inception_from_state_dict(bad)
    # through a file: the error names the file and the key; num_batches_tracked is tolerated
    ok = dict(sd, **{'Conv2d_1a_3x3.bn.num_batches_tracked': np.array(0, np.int64)})
    I.inception_from_state_dict(ok)
    bad = {k: v for k, v in sd.items() if k != 'fc.bias'}
    save_torch(bad, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match=r"bad\.pth: missing key 'fc\.bias'"):
        I.load_inception(tmp_path / 'bad.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        I.load_inception(tmp_path / 'nowhere.pth')


def _bilinear_loop(img, size, step=1):
    """torch F.interpolate(mode='bilinear', align_corners=False) by its definition, pixel by pixel (every
    `step`-th output row and column; the others stay 0)."""
    h, w = img.shape[:2]
    out = np.zeros((size, size) + img.shape[2:], np.float64)

    def src(i, n_in):
        s = max((i + 0.5) * n_in / size - 0.5, 0.0)
        i0 = min(int(np.floor(s)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), s - i0

    for oy in range(0, size, step):
        y0, y1, ly = src(oy, h)
        for ox in range(0, size, step):
            x0, x1, lx = src(ox, w)
            out[oy, ox] = (1 - ly) * ((1 - lx) * img[y0, x0] + lx * img[y0, x1]) + ly * (
                (1 - lx) * img[y1, x0] + lx * img[y1, x1]
            )
    return out


@pytest.mark.parametrize('h,size', [(5, 13), (16, 7), (32, 299)])
def test_resize_matches_definition(h, size):
    img = np.random.RandomState(h).rand(1, h, h, 2).astype(np.float32)
    got = np.asarray(I.resize_bilinear(jnp.asarray(img), size))[0]
    step = 1 if size < 100 else 5
    np.testing.assert_allclose(got[::step, ::step], _bilinear_loop(img[0], size, step)[::step, ::step], atol=1e-5)


def test_pooling_matches_definition():
    x = np.random.RandomState(0).randn(1, 7, 6, 3).astype(np.float32)
    h, w = 7, 6
    avg = np.zeros_like(x)
    mx1 = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            win = x[0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]  # only real pixels count
            avg[0, i, j] = win.mean((0, 1))
            mx1[0, i, j] = win.max((0, 1))
    np.testing.assert_allclose(np.asarray(I.avg_pool_3x3_exclude_pad(jnp.asarray(x))), avg, atol=1e-6)
    np.testing.assert_allclose(np.asarray(I.max_pool(jnp.asarray(x), 1, 1)), mx1, atol=0)
    mx2 = np.stack([[x[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max((0, 1)) for j in range(2)] for i in range(3)])
    np.testing.assert_allclose(np.asarray(I.max_pool(jnp.asarray(x), 2)), mx2[None], atol=0)


# ----------------------------------------------------------------------------------------------------------
# The torch re-implementation of pytorch-fid's FID Inception (written from its definition, here in the test).


def _torch_fid_inception():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, cin, cout, k, s=1, p=0):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    def tf_avg(x):
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

    class A(nn.Module):
        def __init__(self, cin, pool):
            super().__init__()
            self.branch1x1 = Conv(cin, 64, 1)
            self.branch5x5_1, self.branch5x5_2 = Conv(cin, 48, 1), Conv(48, 64, 5, p=2)
            self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(cin, 64, 1), Conv(64, 96, 3, p=1)
            self.branch3x3dbl_3 = Conv(96, 96, 3, p=1)
            self.branch_pool = Conv(cin, pool, 1)

        def forward(self, x):
            return torch.cat(
                [
                    self.branch1x1(x),
                    self.branch5x5_2(self.branch5x5_1(x)),
                    self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                    self.branch_pool(tf_avg(x)),
                ],
                1,
            )

    class B(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3 = Conv(cin, 384, 3, s=2)
            self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(cin, 64, 1), Conv(64, 96, 3, p=1)
            self.branch3x3dbl_3 = Conv(96, 96, 3, s=2)

        def forward(self, x):
            return torch.cat(
                [
                    self.branch3x3(x),
                    self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                    F.max_pool2d(x, 3, 2),
                ],
                1,
            )

    class Cb(nn.Module):
        def __init__(self, c7):
            super().__init__()
            self.branch1x1 = Conv(768, 192, 1)
            self.branch7x7_1, self.branch7x7_2 = Conv(768, c7, 1), Conv(c7, c7, (1, 7), p=(0, 3))
            self.branch7x7_3 = Conv(c7, 192, (7, 1), p=(3, 0))
            self.branch7x7dbl_1 = Conv(768, c7, 1)
            self.branch7x7dbl_2 = Conv(c7, c7, (7, 1), p=(3, 0))
            self.branch7x7dbl_3 = Conv(c7, c7, (1, 7), p=(0, 3))
            self.branch7x7dbl_4 = Conv(c7, c7, (7, 1), p=(3, 0))
            self.branch7x7dbl_5 = Conv(c7, 192, (1, 7), p=(0, 3))
            self.branch_pool = Conv(768, 192, 1)

        def forward(self, x):
            d = x
            for i in range(1, 6):
                d = getattr(self, f'branch7x7dbl_{i}')(d)
            return torch.cat(
                [
                    self.branch1x1(x),
                    self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                    d,
                    self.branch_pool(tf_avg(x)),
                ],
                1,
            )

    class Db(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch3x3_1, self.branch3x3_2 = Conv(768, 192, 1), Conv(192, 320, 3, s=2)
            self.branch7x7x3_1 = Conv(768, 192, 1)
            self.branch7x7x3_2 = Conv(192, 192, (1, 7), p=(0, 3))
            self.branch7x7x3_3 = Conv(192, 192, (7, 1), p=(3, 0))
            self.branch7x7x3_4 = Conv(192, 192, 3, s=2)

        def forward(self, x):
            b = x
            for i in range(1, 5):
                b = getattr(self, f'branch7x7x3_{i}')(b)
            return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, 2)], 1)

    class E(nn.Module):
        def __init__(self, cin, use_max):
            super().__init__()
            self.use_max = use_max
            self.branch1x1 = Conv(cin, 320, 1)
            self.branch3x3_1 = Conv(cin, 384, 1)
            self.branch3x3_2a = Conv(384, 384, (1, 3), p=(0, 1))
            self.branch3x3_2b = Conv(384, 384, (3, 1), p=(1, 0))
            self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(cin, 448, 1), Conv(448, 384, 3, p=1)
            self.branch3x3dbl_3a = Conv(384, 384, (1, 3), p=(0, 1))
            self.branch3x3dbl_3b = Conv(384, 384, (3, 1), p=(1, 0))
            self.branch_pool = Conv(cin, 192, 1)

        def forward(self, x):
            b = self.branch3x3_1(x)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            pool = F.max_pool2d(x, 3, 1, 1) if self.use_max else tf_avg(x)
            return torch.cat(
                [
                    self.branch1x1(x),
                    self.branch3x3_2a(b),
                    self.branch3x3_2b(b),
                    self.branch3x3dbl_3a(d),
                    self.branch3x3dbl_3b(d),
                    self.branch_pool(pool),
                ],
                1,
            )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.Conv2d_1a_3x3, self.Conv2d_2a_3x3 = Conv(3, 32, 3, s=2), Conv(32, 32, 3)
            self.Conv2d_2b_3x3 = Conv(32, 64, 3, p=1)
            self.Conv2d_3b_1x1, self.Conv2d_4a_3x3 = Conv(64, 80, 1), Conv(80, 192, 3)
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
            self.Mixed_6a = B(288)
            self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = Cb(128), Cb(160), Cb(160), Cb(192)
            self.Mixed_7a = Db()
            self.Mixed_7b, self.Mixed_7c = E(1280, False), E(2048, True)
            self.fc = nn.Linear(2048, 1008)

        def forward(self, img01):  # [N, 3, H, W] in [0, 1], as pytorch-fid
            x = F.interpolate(img01, size=(299, 299), mode='bilinear', align_corners=False) * 2 - 1
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
            x = F.max_pool2d(x, 3, 2)
            for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
                x = getattr(self, f'Mixed_{name}')(x)
            feats = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return feats, self.fc(feats)

    return Net().eval()


@pytest.mark.torch
def test_inception_matches_torch_reimplementation(fake_inception, tmp_path):
    torch = pytest.importorskip('torch')
    sd, path, inc = fake_inception
    net = _torch_fid_inception()
    theirs = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
    assert list(theirs.items()) == list(I.inception_state_dict_shapes().items())  # keys, shapes and order
    # pytorch-fid's file predates torch 1.6: also read the legacy format, with num_batches_tracked
    sd_t = {k: torch.from_numpy(v) for k, v in sd.items()}
    net.load_state_dict(sd_t, strict=True)
    torch.save(net.state_dict(), tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    inc_legacy = I.load_inception(tmp_path / 'legacy.pth')
    x = _images()
    with torch.no_grad():
        f_ref, l_ref = net(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255)
    a = jax.tree_util.tree_leaves_with_path(inc.params)
    b = jax.tree_util.tree_leaves_with_path(inc_legacy.params)
    assert [p for p, _ in a] == [p for p, _ in b] and all(np.array_equal(u, v) for (_, u), (_, v) in zip(a, b))
    out = inc(x)
    f, lg = np.asarray(out['features']), np.asarray(out['logits'])
    assert np.abs(f - f_ref.numpy()).max() <= 1e-4 * np.abs(f_ref.numpy()).max()
    assert np.abs(lg - l_ref.numpy()).max() <= 1e-4 * np.abs(l_ref.numpy()).max()
    # the pieces against torch itself
    img = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    ours = np.asarray(I.resize_bilinear(jnp.asarray(x, jnp.float32), 299)).transpose(0, 3, 1, 2)
    theirs = torch.nn.functional.interpolate(img, size=(299, 299), mode='bilinear', align_corners=False)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-3)
    F = torch.nn.functional
    feat = torch.randn(1, 4, 9, 8)
    nhwc = jnp.asarray(feat.permute(0, 2, 3, 1).numpy())
    for mine, ref in (
        (I.avg_pool_3x3_exclude_pad(nhwc), F.avg_pool2d(feat, 3, 1, 1, count_include_pad=False)),
        (I.max_pool(nhwc, 1, 1), F.max_pool2d(feat, 3, 1, 1)),
        (I.max_pool(nhwc, 2), F.max_pool2d(feat, 3, 2)),
    ):
        np.testing.assert_allclose(np.asarray(mine).transpose(0, 3, 1, 2), ref.numpy(), atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# compute_metrics and generation.


class ProjectionExtractor:
    """Stand-in for a domain evaluator: a fixed random projection of the pixels; counts its calls."""

    def __init__(self, resolution=16, dim=24, seed=0):
        self.resolution = resolution
        self.proj = np.random.RandomState(seed).randn(resolution * resolution * 3, dim).astype(np.float32)
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        x = np.asarray(images)
        x = x / 127.5 - 1 if x.dtype == np.uint8 else x.astype(np.float32)
        return {'features': jnp.asarray(x.reshape(len(x), -1) @ self.proj / 30)}


def _blobs(n, res, seed, bright):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 120, (n, res, res, 3)) + bright
    return np.clip(img, 0, 255).astype(np.uint8)


def test_parse_metric_names():
    assert parse_metric('fd_eval10k') == C.MetricSpec('fd_eval10k', 'fd', 'eval', 10000)
    assert parse_metric('kid_pix2000').n == 2000
    assert parse_metric('fid50k') == C.MetricSpec('fid50k', 'fd', 'inception', 50000)
    assert parse_metric('pr_inception3k').extractor == 'inception'
    for bad in ('fd_eval', 'fid', 'is50k', 'fd_vgg10k', 'kid_eval1'):
        with pytest.raises(MetricsError, match='valid metrics: fd_eval<N>|at least 2'):
            parse_metric(bad)


def test_compute_metrics_on_arrays_matches_direct_formulas():
    ext = ProjectionExtractor()
    real, gen = _blobs(96, 16, 0, 40), _blobs(80, 16, 1, 60)
    res = compute_metrics(
        gen,
        real,
        'fd_eval64,kid_eval64,pr_eval64,fd_eval32',
        extractor=ext,
        batch_size=32,
        kid_subsets=5,
        kid_subset_size=50,
    )
    fr = np.asarray(ext(real[:64])['features'])
    fg = np.asarray(ext(gen[:64])['features'])
    assert set(res) == {'fd_eval64', 'kid_eval64', 'pr_eval64_precision', 'pr_eval64_recall', 'fd_eval32'}
    assert all(type(v) is float for v in res.values())
    assert abs(res['fd_eval64'] - fd_from_features(fr, fg)) <= 1e-4 * res['fd_eval64']
    assert abs(res['fd_eval32'] - fd_from_features(fr[:32], fg[:32])) <= 1e-4 * res['fd_eval32']
    assert abs(res['kid_eval64'] - kid(fr, fg, 5, 50)) <= 1e-5 * abs(res['kid_eval64'])
    pr = precision_recall(fr, fg)
    assert (res['pr_eval64_precision'], res['pr_eval64_recall']) == (pr['precision'], pr['recall'])
    same = compute_metrics(real[:64], real, 'fd_eval64,pr_eval64', extractor=ext)
    assert abs(same['fd_eval64']) < 1e-6 and same['pr_eval64_precision'] == same['pr_eval64_recall'] == 1.0


def test_compute_metrics_errors():
    ext = ProjectionExtractor(resolution=16)
    real, gen = _blobs(40, 16, 0, 40), _blobs(80, 16, 1, 60)
    with pytest.raises(MetricsError, match=r'has 40 images but fd_eval64 needs 64'):
        compute_metrics(gen, real, 'fd_eval64', extractor=ext)
    with pytest.raises(MetricsError, match=r'images are 32x32 but the feature extractor .* is for 16x16'):
        compute_metrics(_blobs(40, 32, 1, 0), _blobs(40, 32, 0, 0), 'fd_eval32', extractor=ext)
    with pytest.raises(MetricsError, match=r'at 16x16 but the generated images are 32x32'):
        compute_metrics(_blobs(40, 32, 1, 0), real, 'fd_eval32', extractor=ext)
    with pytest.raises(MetricsError, match='need the Inception weights'):
        compute_metrics(gen, real, 'fid20', extractor=ext)
    with pytest.raises(MetricsError, match="unknown metric 'fd_eval'"):
        compute_metrics(gen, real, 'fd_eval', extractor=ext)
    with pytest.raises(MetricsError, match='need a domain evaluator'):
        compute_metrics(gen, real, 'fd_eval20')


@pytest.fixture(scope='module')
def demo_gen():
    return aj.load_checkpoint(DEMO_PARENT).generator()


def test_compute_metrics_generator_cache_and_batch_invariance(demo_gen):
    from alignjax.data import make_dataset

    ds = make_dataset('proc:faces?n=40', 32)
    ext = ProjectionExtractor(resolution=32)
    a = compute_metrics(demo_gen, ds, 'fd_eval32,kid_eval32', extractor=ext, batch_size=16, kid_subsets=3)
    calls = ext.calls
    b = compute_metrics(demo_gen, ds, 'fd_eval32,kid_eval32', extractor=ext, batch_size=16, kid_subsets=3)
    assert a == b and ext.calls - calls == 2  # real features came from the cache: only 2 gen batches
    assert a['fd_eval32'] > 0
    # the images do not depend on the batch size: z is drawn in order, noise maps per image index
    x = np.concatenate(list(generate_images(demo_gen, 20, batch_size=16)))
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and x.std() > 10
    shapes = tuple(sorted(demo_gen.noise_shapes.items()))
    key = jax.random.key(0)
    whole = C.noise_maps(key, jnp.arange(20, dtype=jnp.uint32), shapes)
    parts = [C.noise_maps(key, jnp.arange(s, s + 8, dtype=jnp.uint32), shapes) for s in (0, 8, 16)]
    for name, (h, w) in shapes:
        got = np.concatenate([np.asarray(p[name]) for p in parts])[:20]
        np.testing.assert_array_equal(got, np.asarray(whole[name]))
        assert got.shape == (20, h, w) and abs(got.std() - 1) < 0.1
    first = np.asarray(whole[shapes[0][0]])
    assert np.abs(first[0] - first[1]).max() > 0.1  # images get different noise
    # a prefix of the stream is the same images; another seed gives other images
    np.testing.assert_array_equal(np.concatenate(list(generate_images(demo_gen, 16, batch_size=16))), x[:16])
    other = np.concatenate(list(generate_images(demo_gen, 16, batch_size=16, seed=1)))
    assert np.abs(other.astype(int) - x[:16]).mean() > 5
    with pytest.raises(MetricsError, match=r"'proc:faces\?n=40' has 40 images but fd_eval64 needs 64"):
        compute_metrics(demo_gen, ds, 'fd_eval64', extractor=ext)
    with pytest.raises(
        MetricsError,
        match=r'makes 32x32 images but the feature extractor .* is for 16x16|'
        r'images are 32x32 but the feature extractor .* is for 16x16',
    ):
        compute_metrics(demo_gen, ds, 'fd_eval32', extractor=ProjectionExtractor(resolution=16))


def test_domain_evaluator_satisfies_the_protocol():
    from alignjax.eval.evaluator import new_evaluator

    ev = new_evaluator(jax.random.key(0), 'faces', 32)  # random weights: only the plumbing
    real, gen = _blobs(48, 32, 0, 40), _blobs(48, 32, 1, 90)
    res = compute_metrics(gen, real, 'fd_eval48,pr_eval48', extractor=ev, batch_size=16)
    assert res['fd_eval48'] > 0 and all(type(v) is float for v in res.values())
    same = compute_metrics(real, real, 'fd_eval48', extractor=ev, batch_size=16)['fd_eval48']
    assert abs(same) < 1e-6 * res['fd_eval48']
    with pytest.raises(MetricsError, match=r'are 16x16 but the feature extractor evaluator\(faces\) is for 32x32'):
        compute_metrics(_blobs(48, 16, 1, 0), _blobs(48, 16, 0, 0), 'fd_eval48', extractor=ev)


def test_shipped_evaluator_as_extractor():
    from alignjax.eval import load_evaluator

    ev = load_evaluator('faces', 32)  # (shipped in assets/)
    from alignjax.data import make_dataset

    faces = make_dataset('proc:faces?seed=123&n=64', 32)
    faces2 = make_dataset('proc:faces?seed=456&n=64', 32)
    toons = make_dataset('proc:toons?seed=123&n=64', 32)
    imgs = lambda ds: np.stack([ds[i]['image'] for i in range(len(ds))])  # noqa: E731
    near = compute_metrics(imgs(faces2), faces, 'fd_eval64', extractor=ev)['fd_eval64']
    far = compute_metrics(imgs(toons), faces, 'fd_eval64', extractor=ev)['fd_eval64']
    assert 0 < near < far


# ----------------------------------------------------------------------------------------------------------
# CLI.


def _cli(capsys, *args):
    rc = cli.main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_runs_and_writes_json(capsys, tmp_path, demo_gen):
    out = tmp_path / 'sub' / 'm.json'
    rc, stdout, err = _cli(
        capsys,
        '--ckpt',
        str(DEMO_PARENT),
        '--data',
        'proc:faces?n=48',
        '--metrics',
        'fd_pix32,pr_pix32',
        '--batch',
        '16',
        '--out',
        str(out),
        '--no-progress',
    )
    assert rc == 0, err
    doc = json.loads(out.read_text())
    assert set(doc['results']) == {'fd_pix32', 'pr_pix32_precision', 'pr_pix32_recall'}
    assert doc['resolution'] == 32 and doc['metrics'] == ['fd_pix32', 'pr_pix32'] and doc['seconds'] >= 0
    ref = compute_metrics(demo_gen, 'proc:faces?n=48', 'fd_pix32', batch_size=16)
    assert abs(doc['results']['fd_pix32'] - ref['fd_pix32']) <= 1e-6 * ref['fd_pix32']
    assert 'fd_pix32:' in stdout


def _fails(capsys, pattern, *args):
    rc, _, err = _cli(capsys, *args)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith('error: ') and 'Traceback' not in err, err
    import re

    assert re.search(pattern, lines[-1]), lines[-1]


def test_cli_errors(capsys, tmp_path, monkeypatch):
    ck = str(DEMO_PARENT)
    _fails(
        capsys,
        r"unknown metric 'fd50k'; valid metrics: fd_eval<N>",
        '--ckpt',
        ck,
        '--data',
        'proc:faces',
        '--metrics',
        'fd50k',
    )
    _fails(capsys, r'fid2k needs --inception PATH', '--ckpt', ck, '--data', 'proc:faces', '--metrics', 'fid2k')
    _fails(
        capsys,
        r'Inception weights not found: .*nope\.pth',
        '--ckpt',
        ck,
        '--data',
        'proc:faces',
        '--metrics',
        'fid2k',
        '--inception',
        str(tmp_path / 'nope.pth'),
    )
    _fails(
        capsys,
        r'checkpoint not found: .*missing\.pkl',
        '--ckpt',
        str(tmp_path / 'missing.pkl'),
        '--data',
        'proc:faces',
        '--metrics',
        'fd_pix100',
    )
    _fails(
        capsys,
        r"'proc:faces\?n=10' has 10 images but fd_pix20 needs 20",
        '--ckpt',
        ck,
        '--data',
        'proc:faces?n=10',
        '--metrics',
        'fd_pix20',
    )
    _fails(
        capsys,
        r"dataset folder '.*none' does not exist",
        '--ckpt',
        ck,
        '--data',
        f'folder:{tmp_path}/none',
        '--metrics',
        'fd_pix20',
    )
    from PIL import Image

    (tmp_path / 'imgs').mkdir()
    Image.fromarray(_blobs(1, 32, 0, 0)[0]).save(tmp_path / 'imgs' / 'a.png')
    _fails(
        capsys,
        r'not a proc: dataset: pass --evaluator',
        '--ckpt',
        ck,
        '--data',
        f'folder:{tmp_path}/imgs',
        '--metrics',
        'fd_eval20',
    )
    # a corrupt Inception file: one line naming the file
    (tmp_path / 'junk.pth').write_bytes(b'PK\x03\x04 not really a zip')
    _fails(
        capsys,
        r'junk\.pth',
        '--ckpt',
        ck,
        '--data',
        'proc:faces?n=30',
        '--metrics',
        'fid20',
        '--inception',
        str(tmp_path / 'junk.pth'),
    )
    # checkpoint (32x32) and evaluator (64x64) resolutions differ
    monkeypatch.setitem(C._EXTRACTORS, ('eval', 'toons', 32), ProjectionExtractor(resolution=64))
    _fails(
        capsys,
        r'makes 32x32 images but the evaluator toons is for 64x64',
        '--ckpt',
        ck,
        '--data',
        'proc:toons?n=30',
        '--metrics',
        'fd_eval20',
    )


def test_cli_subprocess_exit_code():
    p = subprocess.run(
        [
            sys.executable,
            '-m',
            'alignjax.metrics',
            '--ckpt',
            str(DEMO_PARENT),
            '--data',
            'proc:faces',
            '--metrics',
            'fd_eval10k,nonsense',
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == 2 and p.stderr.strip().startswith("error: unknown metric 'nonsense'"), p.stderr
    assert 'Traceback' not in p.stderr


def test_cli_help_and_flag_errors(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(['--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and 'Distribution metrics of a checkpoint' in out and '--noise-mode' in out
    for argv, want in [
        (['--data', 'proc:faces'], 'error: --ckpt is required'),
        (['--ckpt', 'x', '--data', 'y', '--bogus'], 'error: --bogus: no such flag'),
        (['--ckpt', 'x', '--data', 'y', '--noise-mode', 'z'], 'error: --noise-mode=z'),
    ]:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith(want) and err.count('\n') == 1, err
    rc, _, err = _cli(
        capsys, '--ckpt', str(DEMO_PARENT), '--data', 'proc:faces?n=8', '--metrics', 'fd_pix4', '--net', 'nope'
    )
    assert rc == 2 and err.strip().splitlines()[-1].startswith('error: --net: ') and "'nope'" in err, err


def test_pixel_projection_extractor():
    ext = PixelProjection.create(8, dim=16)
    f = np.asarray(ext(_blobs(3, 8, 0, 0))['features'])
    assert f.shape == (3, 16)
    with pytest.raises(ValueError, match='are 16x16 but the feature extractor pix expects 8x8'):
        ext(_blobs(3, 16, 0, 0))
    mu, cov = mean_cov(f)
    assert mu.shape == (16,) and cov.shape == (16, 16)
