"""Procedural aligned domains: determinism, shapes, landmarks agree with masks, factors matter."""

import numpy as np
import pytest

from alignjax.data import make_dataset
from alignjax.data import procedural as P

F = {n: i for i, n in enumerate(P.FACTOR_NAMES)}

# The mask class each landmark must touch.
EXPECTED_CLASS = {
    'eye_left': 'eyes',
    'eye_right': 'eyes',
    'nose_tip': 'nose',
    'mouth_left': 'mouth',
    'mouth_right': 'mouth',
    'ear_tip_left': 'ears',
    'ear_tip_right': 'ears',
    'roof_apex': 'roof',
    'door': 'door',
    'window_left': 'window',
    'window_right': 'window',
    'base_left': 'wall',
    'base_right': 'wall',
    'tower_top': 'tower',
}


def test_factor_table_documented():
    assert len(P.FACTOR_NAMES) == P.NUM_FACTORS == 18
    for name in P.FACTOR_NAMES:
        lo, hi = P.FACTOR_RANGES[name]
        assert lo < hi and P.FACTOR_DOCS[name]
    f = P.sample_factors(0, 2000)
    lo = np.array([P.FACTOR_RANGES[n][0] for n in P.FACTOR_NAMES])
    hi = np.array([P.FACTOR_RANGES[n][1] for n in P.FACTOR_NAMES])
    assert np.all(f >= lo) and np.all(f <= hi)
    assert set(np.unique(f[:, F['glasses']])) == {0.0, 1.0}
    assert 0.15 < f[:, F['glasses']].mean() < 0.35
    for d in P.DOMAINS:
        assert P.LANDMARK_NAMES[d] and P.MASK_CLASSES[d][0] in ('background', 'sky')


def test_factors_index_addressable_and_seeded():
    a = P.sample_factors(5, 50)
    np.testing.assert_array_equal(a[37], P.sample_factors(5, indices=[37])[0])
    np.testing.assert_array_equal(a[10:20], P.sample_factors(5, 10, start=10))
    assert not np.allclose(a, P.sample_factors(6, 50))


@pytest.mark.parametrize('domain', P.DOMAINS)
def test_render_deterministic_and_shaped(domain):
    f = P.sample_factors(1, 4)
    r1 = P.render(domain, f, 32)
    r2 = P.render(domain, f, 32)
    for k in ('image', 'mask', 'landmarks', 'visible'):
        np.testing.assert_array_equal(r1[k], r2[k])
    K = len(P.LANDMARK_NAMES[domain])
    assert r1['image'].shape == (4, 32, 32, 3) and r1['image'].dtype == np.uint8
    assert r1['mask'].shape == (4, 32, 32) and r1['mask'].dtype == np.uint8
    assert r1['landmarks'].shape == (4, K, 2) and r1['landmarks'].dtype == np.float32
    assert r1['visible'].shape == (4, K) and r1['visible'].dtype == bool
    assert r1['mask'].max() < len(P.MASK_CLASSES[domain])
    # a batch renders each image exactly as it renders alone
    np.testing.assert_array_equal(P.render(domain, f[2:3], 32)['image'][0], r1['image'][2])
    # the dict form of factors is accepted
    d = P.factors_to_dict(f[:1])
    np.testing.assert_array_equal(P.render(domain, d, 32)['image'], r1['image'][:1])
    # domains differ
    if domain != 'faces':
        assert not np.array_equal(P.render('faces', f, 32)['image'], r1['image'])


@pytest.mark.parametrize('res', [16, 256])
def test_resolution_range(res):
    r = P.render('faces', P.sample_factors(0, 1), res)
    assert r['image'].shape == (1, res, res, 3)
    # landmarks scale with resolution (pixel centres at integers)
    r64 = P.render('faces', P.sample_factors(0, 1), 64)
    np.testing.assert_allclose((r['landmarks'] + 0.5) / res, (r64['landmarks'] + 0.5) / 64, atol=1e-5)


def _near(mask, x, y, radius):
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    sel = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    return set(np.unique(mask[sel]).tolist())


@pytest.mark.parametrize('domain', P.DOMAINS)
def test_landmarks_lie_on_their_feature(domain):
    """Every visible landmark touches (within 1.5 px at 128^2) the mask class it names;
    the chin lies on the boundary between face and what is below it."""
    f = P.sample_factors(11, 16)
    f[::2, F['glasses']] = 1  # exercise towers / glasses
    r = P.render(domain, f, 128)
    classes = P.MASK_CLASSES[domain]
    names = P.LANDMARK_NAMES[domain]
    checked = 0
    for i in range(len(f)):
        for k, name in enumerate(names):
            if not r['visible'][i, k]:
                continue
            x, y = r['landmarks'][i, k]
            near = {classes[c] for c in _near(r['mask'][i], x, y, 1.5)}
            if name == 'chin':
                near2 = {classes[c] for c in _near(r['mask'][i], x, y, 2.0)}
                skin = 'fur' if domain == 'animals' else 'skin'
                assert skin in near2 and len(near2 - {skin}) > 0, (i, name, near2)
            else:
                assert EXPECTED_CLASS[name] in near, (domain, i, name, near)
            checked += 1
    assert checked >= len(f) * (len(names) - 1)


@pytest.mark.parametrize('domain', P.DOMAINS)
def test_landmark_pixels_agree_at_64(domain):
    """The same agreement at 64^2, within 1 px, where features are a few pixels wide."""
    f = P.sample_factors(4, 24)
    f[::2, F['glasses']] = 1
    r = P.render(domain, f, 64)
    cls = P.MASK_CLASSES[domain]
    for i in range(len(f)):
        for k, name in enumerate(P.LANDMARK_NAMES[domain]):
            if name == 'chin' or not r['visible'][i, k]:
                continue
            x, y = r['landmarks'][i, k]
            near = {cls[c] for c in _near(r['mask'][i], x, y, 1.0)}
            assert EXPECTED_CLASS[name] in near, (domain, i, name, near)


def test_glasses_forgotten_by_animals():
    f = P.sample_factors(2, 8)
    f[:, F['glasses']] = 1
    g = P.MASK_CLASSES['faces'].index('glasses')
    for domain in ('faces', 'toons'):
        assert (P.render(domain, f, 64)['mask'] == g).any(axis=(1, 2)).all()
    assert not (P.render('animals', f, 64)['mask'] == g).any()
    f[:, F['glasses']] = 0
    assert not (P.render('faces', f, 64)['mask'] == g).any()
    tower = P.MASK_CLASSES['buildings'].index('tower')
    assert not (P.render('buildings', f, 64)['mask'] == tower).any()


def test_factors_move_what_they_name():
    base = P.sample_factors(3, 1)

    def with_(name, values):
        f = np.repeat(base, len(values), 0)
        f[:, F[name]] = values
        return f

    # yaw moves the nose tip to the right, more than the eyes
    r = P.render('faces', with_('yaw', [-1, 0, 1]), 128)
    nose = r['landmarks'][:, 2, 0]
    eye = r['landmarks'][:, 0, 0]
    assert nose[0] < nose[1] < nose[2] and nose[2] - nose[0] > eye[2] - eye[0]
    # eye openness grows the eye region in every head domain
    eyes = P.MASK_CLASSES['faces'].index('eyes')
    for d in ('faces', 'toons', 'animals'):
        m = P.render(d, with_('eye_open', [0.0, 1.0]), 128)['mask']
        assert (m[1] == eyes).sum() > 1.5 * (m[0] == eyes).sum()
    # smile raises the mouth corners relative to the mouth centre line
    r = P.render('faces', with_('smile', [-1, 1]), 128)
    assert r['landmarks'][1, 3, 1] < r['landmarks'][0, 3, 1]
    # hair length: longer hair in faces, drooping ears in animals
    hair = P.MASK_CLASSES['faces'].index('hair')
    m = P.render('faces', with_('hair_length', [0, 1]), 128)['mask']
    assert (m[1] == hair).sum() > 1.5 * (m[0] == hair).sum()
    ears = P.render('animals', with_('hair_length', [0, 1]), 128)['landmarks'][:, 6, 1]
    assert ears[1] > ears[0] + 20  # ear tip far lower when drooping
    # buildings: yaw turns the facade, skin tone changes the wall colour
    b = P.render('buildings', with_('skin_tone', [0, 1]), 64)
    wall = P.MASK_CLASSES['buildings'].index('wall')
    lum = [b['image'][i][b['mask'][i] == wall].mean() for i in range(2)]
    assert lum[0] > lum[1] + 40


def test_xflip_annotations_follow_image():
    ds = make_dataset('proc:animals?n=6&seed=2', 64, xflip=True)
    a = ds.annotations([1, 6 + 1])
    np.testing.assert_array_equal(a['image'][1], ds[7]['image'])
    np.testing.assert_array_equal(a['image'][1], a['image'][0][:, ::-1])
    names = P.LANDMARK_NAMES['animals']
    l, r = names.index('eye_left'), names.index('eye_right')
    assert a['landmarks'][1, l, 0] < a['landmarks'][1, r, 0]  # left stays image-left
    np.testing.assert_allclose(a['landmarks'][1, l, 0], 63 - a['landmarks'][0, r, 0], atol=1e-4)
    eyes = P.MASK_CLASSES['animals'].index('eyes')
    x, y = a['landmarks'][1, l]
    assert eyes in _near(a['mask'][1], x, y, 1.0)


def test_aligned_across_domains():
    """Index i of every domain (same seed) is rendered from the same factors."""
    dss = {d: make_dataset(f'proc:{d}?seed=9&n=10', 32) for d in P.DOMAINS}
    for ds in dss.values():
        np.testing.assert_array_equal(ds.annotations([4])['factors'], P.sample_factors(9, indices=[4]))


@pytest.mark.parametrize('domain', ['faces', 'toons', 'animals'])
def test_every_part_painter_of_a_head_style_paints(domain, monkeypatch):
    """The per-domain style record drives the painting: leaving out any one of its part painters changes the
    image (a painter that silently paints nothing, or a style field nothing reads, fails here)."""
    import dataclasses

    from alignjax.data.procedural import _heads

    fac = P.sample_factors(3, 12)
    fac[:, P.FACTOR_NAMES.index('glasses')] = 1.0
    full = P.render(domain, fac, 32)['image']
    style = _heads.STYLES[domain]
    painters = [f.name for f in dataclasses.fields(style) if callable(getattr(style, f.name))]
    assert len(painters) >= 5
    for name in painters:
        if name == 'background':
            continue  # it fills the canvas: leaving it out leaves uninitialised memory
        monkeypatch.setitem(_heads.STYLES, domain, dataclasses.replace(style, **{name: lambda *a, **k: None}))
        img = P.render(domain, fac, 32)['image']
        assert np.abs(img.astype(int) - full).max() > 20, f'{domain}: {name} painted nothing'
    monkeypatch.setitem(_heads.STYLES, domain, dataclasses.replace(style, ink=not style.ink))
    assert not np.array_equal(P.render(domain, fac, 32)['image'], full)
