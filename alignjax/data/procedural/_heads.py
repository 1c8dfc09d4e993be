"""Head-based domains: ``faces`` (parent), ``toons`` (close child), ``animals`` (far child).

One geometric model, driven by the shared factors, places every feature; the
domains differ only in how the parts look. A feature is a point on a unit
sphere (longitude ``theta`` to the right, latitude ``phi`` downwards, lifted
``h`` off the surface) turned by yaw and pitch and projected orthographically
onto the head ellipse, so features slide and foreshorten as the head turns
while the landmarks stay exact (they are the same projected points).

Each domain is a :class:`HeadStyle` record in :data:`STYLES`: its geometry
constants, shading, and one painter per part.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from alignjax.data.procedural import _raster as R
from alignjax.data.procedural._factors import F, hash_uniform
from alignjax.data.procedural._raster import col, f32, lerp, rgb, smoothstep

# Mask classes shared by the three head domains (same index = same part).
HEAD_CLASSES = (
    'background',
    'skin',
    'hair',
    'eyes',
    'mouth',
    'nose',
    'glasses',
    'ears',
    'brows',
    'neck',
    'body',
)
C = {name: k for k, name in enumerate(HEAD_CLASSES)}

FACE_LANDMARKS = ('eye_left', 'eye_right', 'nose_tip', 'mouth_left', 'mouth_right', 'chin')
ANIMAL_LANDMARKS = FACE_LANDMARKS + ('ear_tip_left', 'ear_tip_right')

SKIN = np.array([[255, 224, 204], [241, 194, 163], [214, 158, 120], [160, 106, 72], [96, 60, 40]], f32)
HAIR = np.array([[236, 222, 184], [205, 160, 90], [176, 84, 40], [120, 78, 48], [58, 38, 26], [22, 18, 17]], f32)
FUR = np.array([[246, 238, 224], [222, 176, 110], [206, 118, 52], [130, 112, 98], [70, 60, 54]], f32)
IRIS = np.array([[70, 110, 160], [80, 130, 90], [110, 80, 50], [60, 40, 25], [120, 130, 140]], f32)
ANIMAL_IRIS = np.array([[200, 160, 40], [120, 170, 60], [150, 100, 40], [90, 60, 30]], f32)


def _pick(table, u):
    """Row of ``table`` chosen by uniforms ``u [N]``."""
    return np.asarray(table, f32)[np.minimum((u * len(table)).astype(np.int64), len(table) - 1)]


@dataclass(frozen=True)
class HeadStyle:
    """How one head domain looks: the geometry's per-domain constants, the shading and the part painters.

    ``paint_head_domain`` calls the painters in order (background, back hair, body, then ears / head / front
    hair on the head's window, then brows / eyes / nose / mouth / glasses on the features' window); a painter
    of ``None`` leaves that part out. Values keep the numeric types the renders were made with (``f32`` or
    Python floats): changing one changes the images bit for bit.
    """

    look: str  # 'photo' | 'cartoon' | 'fur': shading of skin, body and neck
    # geometry
    head_width: object  # extra width of the head ellipse
    eye_phi: object  # latitude of the eyes
    eye_width: object  # half-width of a frontal eye, in units of the head's rx
    nose_lift: float  # how far the nose tip stands off the sphere
    nose_phi: tuple  # latitudes of the nose tip and base
    mouth_phi: object
    mouth_theta: object
    # colours and outlines
    skin_palette: np.ndarray
    iris_palette: np.ndarray
    bg_saturation: float
    saturate: bool  # cartoon palette: more saturated, a touch brighter
    ink: bool  # dark outlines around the parts
    body_offset: float  # body centre below the head centre, in units of ry
    neck_width: float  # in units of rx
    # eyes
    eye_round: float
    iris_radius: float
    pupil_radius: float  # of the iris radius (round pupils)
    catch_light: float  # radius of the highlight in the eye
    # part painters (cv: the canvas or a window of it; p: the shared context from `_context`):
    # background(cv, p), back_hair(cv, p), ears(cv, p, front), front_hair(cv, p, dhead, lam, a_head),
    # brows / nose / mouth / glasses(cv, p, a_head, lam)
    background: object = None
    back_hair: object = None
    ears: object = None
    front_hair: object = None
    brows: object = None
    nose: object = None
    mouth: object = None
    glasses: object = None
    animal_ears: bool = False  # ears on top (landmarked tips) instead of at the sides


class Geometry(SimpleNamespace):
    pass


def geometry(fac: np.ndarray, domain: str) -> Geometry:
    """Feature placement (per-image scalars of shape ``[N]``) for ``fac [N, F]``."""
    st = STYLES[domain]
    g = Geometry()
    n = len(fac)
    g.n = n
    g.yaw = fac[:, F['yaw']] * f32(0.6)
    g.pitch = fac[:, F['pitch']] * f32(0.35)
    s, asp = fac[:, F['scale']], fac[:, F['aspect']]
    g.cx = fac[:, F['pos_x']].copy()
    g.cy = f32(-0.12) + fac[:, F['pos_y']]
    g.rx = f32(0.47) * s * np.sqrt(asp) * st.head_width
    g.ry = f32(0.60) * s / np.sqrt(asp)
    cyaw, syaw = np.cos(g.yaw), np.sin(g.yaw)
    cp, sp = np.cos(g.pitch), np.sin(g.pitch)

    def proj(theta, phi, h=0.0):
        r = 1.0 + h
        x = r * np.sin(theta) * np.cos(phi)
        y = r * np.sin(phi)
        z = r * np.cos(theta) * np.cos(phi)
        x1 = x * cyaw + z * syaw
        z1 = -x * syaw + z * cyaw
        y2 = y * cp + z1 * sp
        z2 = -y * sp + z1 * cp
        return (g.cx + g.rx * x1).astype(f32), (g.cy + g.ry * y2).astype(f32), z2.astype(f32)

    g.proj = proj

    # Eyes: centres, foreshortened half-widths, openness.
    eye_theta, eye_phi = f32(0.40), st.eye_phi
    g.eye = []
    for side in (-1, 1):
        ex, ey, ez = proj(side * eye_theta, eye_phi, 0.0)
        fore = np.clip(np.cos(side * eye_theta + g.yaw) / np.cos(eye_theta), 0.3, 1.15).astype(f32)
        g.eye.append((ex, ey, fore))
    g.ew = st.eye_width * g.rx  # half width of a frontal eye
    eo = fac[:, F['eye_open']]
    g.open = (f32(0.22) + f32(0.78) * eo).astype(f32)

    # Brows: raised (brow > 0) or lowered and slanted (brow < 0).
    brow = fac[:, F['brow']]
    g.brow = brow
    g.brow_pts = [proj(side * f32(0.40), f32(-0.24) - f32(0.09) * brow, 0.04) for side in (-1, 1)]

    # Nose: bridge top, tip (lifted off the sphere), base between the nostrils.
    lift = st.nose_lift
    g.nose_top = proj(0.0, 0.10, 0.08)
    g.nose_tip = proj(0.0, st.nose_phi[0], lift)
    g.nose_base = proj(0.0, st.nose_phi[1], lift * 0.45)

    # Mouth: centre and corners; smile raises the corners and opens the mouth.
    sm = fac[:, F['smile']]
    g.smile = sm
    mphi, mtheta = st.mouth_phi, st.mouth_theta
    g.mouth_c = proj(0.0, mphi + 0.015 * sm, 0.06)
    g.mouth_l = proj(-mtheta, mphi - 0.07 * sm, 0.0)
    g.mouth_r = proj(mtheta, mphi - 0.07 * sm, 0.0)
    g.mouth_open = np.clip((sm - 0.35) / 0.65, 0, 1).astype(f32)

    # Chin: bottom of the outline; the jaw shears towards it as the head turns.
    chin = proj(0.0, 1.36, 0.0)
    g.chin = (chin[0], (g.cy + g.ry * np.maximum(chin[1] - g.cy, 0.9 * g.ry) / g.ry).astype(f32), chin[2])
    g.ry_low = (g.chin[1] - g.cy).astype(f32)
    g.shear = (g.chin[0] - g.cx).astype(f32)

    # Ears (human ears at the sides; animal ears on top, drooping with length).
    hl = fac[:, F['hair_length']]
    g.hair_len = hl
    if st.animal_ears:
        droop = hl
        g.ears = []
        for side in (-1, 1):
            ax, ay, _ = proj(side * f32(0.62 + 0.12 * droop), -0.80 + 0.10 * droop, 0.0)
            ang = np.deg2rad(f32(18) + f32(132) * droop)  # from vertical, outwards
            length = g.ry * (f32(0.50) + f32(0.25) * droop)
            dx, dy = side * np.sin(ang), -np.cos(ang)
            r0 = g.rx * (f32(0.26) + f32(0.02) * droop)
            r1 = g.rx * (f32(0.02) + f32(0.13) * droop)
            bx, by = ax + dx * length, ay + dy * length
            tip = (bx + dx * r1 * 0.5, by + dy * r1 * 0.5)
            g.ears.append(SimpleNamespace(ax=ax, ay=ay, bx=bx, by=by, r0=r0, r1=r1, tip=tip))
        g.droop = droop
    else:
        g.ears = [proj(side * f32(1.42), f32(0.06), 0.0) for side in (-1, 1)]
    return g


def landmarks(g: Geometry, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks ``[N, K, 2]`` in normalised coords, and visibility ``[N, K]``."""
    pts = [
        (g.eye[0][0], g.eye[0][1]),
        (g.eye[1][0], g.eye[1][1]),
        g.nose_tip[:2],
        g.mouth_l[:2],
        g.mouth_r[:2],
        g.chin[:2],
    ]
    if STYLES[domain].animal_ears:
        pts += [g.ears[0].tip, g.ears[1].tip]
    lm = np.stack([np.stack(p, -1) for p in pts], 1).astype(f32)
    vis = np.ones(lm.shape[:2], bool)
    return lm, vis


# ----------------------------------------------------------------------------
# Painting


def _light(fac):
    lx, ly = fac[:, F['light_x']], fac[:, F['light_y']]
    lz = np.full_like(lx, 1.4)
    nrm = np.sqrt(lx * lx + ly * ly + lz * lz)
    return col(lx / nrm), col(ly / nrm), col(lz / nrm)


def _sphere_normal(cv, cx, cy, rx, ry):
    x = (cv.u - col(cx)) / col(rx)
    y = (cv.v - col(cy)) / col(ry)
    r2 = np.minimum(x * x + y * y, f32(1))
    z = np.sqrt(1 - r2)
    return x, y, z


def _lambert(n, light):
    x, y, z = n
    lx, ly, lz = light
    return np.clip(x * lx + y * ly + z * lz, 0, 1)


def _spec(n, light, power):
    x, y, z = n
    lx, ly, lz = light
    hx, hy, hz = lx, ly, lz + 1
    hn = np.sqrt(hx * hx + hy * hy + hz * hz)
    d = np.clip((x * hx + y * hy + z * hz) / hn, 0, 1)
    return d**power


def _head_sd(cv, g, st, key):
    """Outline of the head (egg shape whose jaw shears with yaw)."""
    X = cv.u - col(g.cx)
    Y = cv.v - col(g.cy)
    ylow = np.maximum(Y, 0) / col(g.ry_low)
    X = X - col(g.shear) * ylow * ylow
    if st.look == 'fur':
        taper = 1 + f32(0.06) * np.minimum(ylow, 1)  # fluffy cheeks
    else:
        taper = 1 - f32(0.17) * np.minimum(ylow, 1) ** 2
    ry = np.where(Y > 0, col(g.ry_low), col(g.ry))
    d = R.sd_ellipse(X, Y, col(g.rx) * taper, ry)
    if st.look == 'fur':  # tufts along the lower outline
        ang = np.arctan2(Y, X) / f32(2 * np.pi) + f32(0.5)
        tuft = R.angular_noise(key, ang, 28, 71)
        amp = smoothstep(-0.2, 0.5, Y / col(g.ry)) * smoothstep(0.08, 0.3, np.abs(X) / col(g.rx))
        d = d - col(g.rx) * f32(0.035) * (tuft + 0.6) * amp  # none at the chin point
    return d


def _eye_local(cv, g, side, scale=1.0):
    ex, ey, fore = g.eye[side]
    ew = col(g.ew * fore * scale)
    a = (cv.u - col(ex)) / ew
    b = (cv.v - col(ey)) / col(g.ew * scale)
    return a, b, ew


def _eye_shape(cv, g, side, scale=1.0, round_=0.0):
    """Almond (or rounder) eye: signed distance, local coords and iris geometry."""
    a, b, ew = _eye_local(cv, g, side, scale)
    op = col(g.open)
    w = np.clip(1 - a * a, 0, 1)
    w = w ** f32(0.5 + 0.3 * (1 - round_))
    up = op * f32(0.62 + 0.25 * round_) * w
    lo = op * f32(0.40 + 0.35 * round_) * w
    ew_n = col(g.ew * scale)
    d = np.maximum(np.maximum(np.abs(a) - 1, b - lo), -b - up) * ew_n * f32(0.7)
    return d, a, b, ew, up, lo


def _cel(lam, lo=0.72, hi=1.0, t=0.42):
    """Cartoon two-tone shading of a Lambert term."""
    return lo + (hi - lo) * smoothstep(t - 0.04, t + 0.04, lam)


# ----------------------------------------------------------------------------
# Part painters: fn(cv, p), cv the canvas (or a window of it), p the context from `_context`.


def _context(cv, fac, st, key, g):
    """What every painter shares: geometry, light, palette colours and per-image detail uniforms."""
    p = SimpleNamespace(g=g, st=st, fac=fac, key=key, px=cv.px)
    p.light = _light(fac)
    p.detail = fac[:, F['detail']]
    d1 = hash_uniform(key, 1).astype(f32)
    p.d2 = hash_uniform(key, 2).astype(f32)
    p.d3 = hash_uniform(key, 3).astype(f32)
    p.cx, p.cy, p.rx, p.ry = col(g.cx), col(g.cy), col(g.rx), col(g.ry)
    skin = R.palette(st.skin_palette, fac[:, F['skin_tone']])
    hair = R.palette(HAIR, fac[:, F['hair_color']])
    bg_h, bg_v = fac[:, F['bg_hue']], fac[:, F['bg_value']]
    bg = R.hsv_to_rgb(bg_h, np.full_like(bg_h, st.bg_saturation), 0.25 + 0.7 * bg_v)
    cloth = R.hsv_to_rgb(d1, 0.25 + 0.5 * p.d2, 0.25 + 0.6 * p.d3)
    if st.saturate:

        def sat(c, k):
            m = c.mean(-1, keepdims=True)
            return np.clip(m + (c - m) * k, 0, 255)

        skin = sat(skin * 1.05, 1.3)
        hair = sat(hair * 0.85, 1.7)
        cloth = sat(cloth, 1.5)
    p.skin, p.hair, p.bg, p.cloth = rgb(skin), rgb(hair), rgb(bg), rgb(cloth)
    p.ink = rgb([[28, 22, 24]])
    p.hl = col(g.hair_len)
    p.part = p.rx * f32(0.45) * col(np.sin(g.yaw))  # hair turns with the head
    return p


def _background_flat(cv, p):
    """Cartoon: one flat colour, a shade darker below the shoulders."""
    cv.img[:] = p.bg * np.where(cv.v < col(p.g.cy + p.g.ry * 1.7), f32(1.0), f32(0.9))[..., None]


def _background_photo(cv, p):
    """A lit, vignetted, slightly mottled backdrop with the soft cast shadow of the head and shoulders."""
    u, v = cv.u, cv.v
    cx, cy, rx, ry = p.cx, p.cy, p.rx, p.ry
    lx, ly, lz = p.light
    grad = 1.08 - 0.16 * (v + 1) / 2
    vign = 1 - 0.18 * (u * u + v * v)
    noise = R.fbm(p.key, (u + 1) / 2, (v + 1) / 2, 3, 2, 11)
    cv.img[:] = p.bg * (grad * vign * (1 + 0.05 * noise))[..., None]
    sx, sy = -col(lx[:, 0, 0] / lz[:, 0, 0]) * 0.12, -col(ly[:, 0, 0] / lz[:, 0, 0]) * 0.08
    dsh = R.sd_ellipse(u - cx - sx, v - cy - sy, rx * 1.05, ry * 1.1)
    dsh2 = R.sd_ellipse(u - cx * 0.6 - sx, v - cy - ry * p.st.body_offset - sy, rx * 2.4, ry * 1.25)
    sh = cv.cov(np.minimum(dsh, dsh2), soft=0.25)
    cv.shade(1 - 0.35 * sh)


def _back_hair(cv, p):
    """Hair behind the head: a cap and, for longer hair, a box falling to the shoulders."""
    u, v, g, st = cv.u, cv.v, p.g, p.st
    cx, cy, rx, ry, hl, part = p.cx, p.cy, p.rx, p.ry, p.hl, p.part
    top = R.sd_ellipse(u - cx - part * 0.5, v - cy + ry * 0.06, rx * (1.08 + 0.10 * hl), ry * (1.06 + 0.04 * hl))
    bottom = cy + ry * (-0.4 + 2.3 * hl)
    half_h = (bottom - (cy - ry * 0.3)) / 2
    mid = cy - ry * 0.3 + half_h
    flare = 1 + 0.12 * smoothstep(cy, cy + ry * 2, v)
    box = R.sd_box(u - cx - part * 0.3, v - mid, rx * (1.08 + 0.12 * hl) * flare, np.maximum(half_h, 0.01), rx * 0.35)
    box = np.where(col(g.hair_len) > 0.22, box, f32(9))
    back = np.minimum(top, box)
    a = cv.cov(back)
    strand = R.fbm(p.key, (u - cx) * 0.5 + 0.5, (v + 1) * 0.12, 14, 2, 21)
    if st.look == 'cartoon':
        colr = p.hair * 0.8
    else:
        colr = p.hair * (0.62 + 0.08 * strand)[..., None]
    cv.paint(a, colr, C['hair'])
    if st.ink:
        cv.paint(cv.stroke(back, 0.018), p.ink)


def _body(cv, p):
    """Shoulders and neck (clothes for people, fur with a lighter bib for animals)."""
    u, v, g, st, key = cv.u, cv.v, p.g, p.st, p.key
    cx, cy, rx, ry = p.cx, p.cy, p.rx, p.ry
    lx, ly, lz = p.light
    skin_c, ink = p.skin, p.ink
    body_off = st.body_offset
    bx, by = cx * 0.6 + col(np.sin(g.yaw)) * rx * 0.25, cy + ry * body_off
    dbody = R.sd_ellipse(u - bx, v - by, rx * 2.35, ry * 1.25)
    nb = _sphere_normal(cv, g.cx * 0.6, g.cy + g.ry * body_off, g.rx * 2.35, g.ry * 1.25)
    lam_b = _lambert(nb, p.light)
    if st.look == 'fur':
        body_col = skin_c * (0.55 + 0.5 * lam_b)[..., None]
        fur = R.fbm(key, (u + 1) / 2, (v + 1) / 2, 24, 2, 31)
        body_col = body_col * (1 + 0.10 * fur)[..., None]
    elif st.look == 'cartoon':
        body_col = p.cloth * _cel(lam_b)[..., None]
    else:
        folds = R.fbm(key, (u + 1) / 2, (v + 1) / 2, 5, 2, 41)
        body_col = p.cloth * (0.45 + 0.6 * lam_b + 0.06 * folds)[..., None]
    a = cv.cov(dbody)
    cv.paint(a, body_col, C['body'])
    if st.ink:
        cv.paint(cv.stroke(dbody, 0.018), ink)

    neck_w = rx * st.neck_width
    ncx = cx + col(np.sin(g.yaw)) * rx * 0.12
    neck_top = cy + ry * 0.55
    neck_bot = by - ry * 0.95
    dneck = R.sd_box(u - ncx, v - (neck_top + neck_bot) / 2, neck_w, (neck_bot - neck_top) / 2, rx * 0.1)
    dcollar = R.sd_ellipse(u - ncx, v - neck_bot, neck_w * 1.35, ry * 0.22)
    dneck = np.minimum(dneck, dcollar)
    width = neck_w * (1 + 0.35 * smoothstep(neck_bot - ry * 0.25, neck_bot, v))
    nx_ = np.clip((u - ncx) / width, -1, 1)
    nz_ = np.sqrt(1 - nx_ * nx_)
    lam_n = np.clip(nx_ * lx + nz_ * lz + 0.2 * ly, 0, 1)
    chin_shadow = 1 - 0.45 * smoothstep(ry * 0.35, 0, v - col(g.chin[1]))
    if st.look == 'cartoon':
        neck_col = (
            skin_c * (0.80 * _cel(lam_n, 0.8, 1.0) * np.where(v < col(g.chin[1]) + ry * 0.12, 0.82, 1.0))[..., None]
        )
    else:
        neck_col = skin_c * ((0.35 + 0.55 * lam_n) * chin_shadow)[..., None]
        if st.look == 'fur':
            neck_col = neck_col * (1 + 0.1 * R.fbm(key, (u + 1) / 2, (v + 1) / 2, 24, 2, 33))[..., None]
    a = cv.cov(dneck)
    cv.paint(a, neck_col, C['neck'])
    if st.ink:
        cv.paint(cv.stroke(dneck, 0.016) * (v > col(g.chin[1])), ink)
    if st.look == 'fur':  # lighter fur down the chest
        dbib = R.sd_ellipse(u - ncx, v - neck_bot - ry * 0.1, neck_w * 0.55, ry * 0.45)
        bib = cv.cov(np.maximum(dbib, np.minimum(dneck, dbody)), soft=0.15)
        cv.paint(bib * 0.45, rgb([[245, 240, 230]]) * (0.6 + 0.4 * lam_b)[..., None])


def _ears_animal(cv, p, front: bool):
    """Tapered ears on top of the head; ears drooping past the outline are painted again in front of it."""
    u, v, g = cv.u, cv.v, p.g
    for side in (0, 1):
        e = g.ears[side]
        de = R.sd_tapered(u, v, col(e.ax), col(e.ay), col(e.bx), col(e.by), col(e.r0), col(e.r1))
        inner = R.sd_tapered(u, v, col(e.ax), col(e.ay), col(e.bx), col(e.by), col(e.r0 * 0.55), col(e.r1 * 0.45))
        wgt = smoothstep(0.45, 0.6, col(g.droop))
        wgt = wgt if front else 1 - 0 * wgt
        if front:
            a = cv.cov(de) * wgt
        else:
            a = cv.cov(de)
        t = R.sd_segment(u, v, col(e.ax), col(e.ay), col(e.bx), col(e.by))[1]
        earc = lerp(p.skin, p.hair, 0.35 + 0.5 * col(g.droop)[..., None]) * (0.7 + 0.3 * t)[..., None]
        # the mask keeps a ~1 px point at the tip, however sharp
        dtip = np.sqrt((u - col(e.tip[0])) ** 2 + (v - col(e.tip[1])) ** 2) - p.px * 0.6
        ma = cv.cov(np.minimum(de, dtip)) * (wgt if front else 1.0)
        cv.paint(a, earc, C['ears'], mask_alpha=ma)
        ai = cv.cov(inner, soft=0.02) * a * (1 - col(g.droop)) * 0.8
        cv.paint(ai, rgb([[215, 140, 140]]) * (0.8 + 0.2 * t)[..., None])


def _ears_human(cv, p, front: bool):
    """Ears at the sides; the near ear shows in front of the outline as the head turns."""
    u, v, g, rx, ry = cv.u, cv.v, p.g, p.rx, p.ry
    for side in (0, 1):
        ex, ey, ez = g.ears[side]
        de = R.sd_ellipse(u - col(ex), v - col(ey), rx * 0.13, ry * 0.19)
        w = smoothstep(0.05, 0.35, col(ez)) if front else 1.0
        a = cv.cov(de) * w
        if p.st.ink:
            cv.paint(a, p.skin * 0.92, C['ears'])
            cv.paint(cv.stroke(de, 0.016) * w, p.ink)
        else:
            inner = cv.cov(R.sd_ellipse(u - col(ex), v - col(ey), rx * 0.07, ry * 0.12), soft=0.02)
            cv.paint(a, p.skin * (0.75 - 0.15 * inner)[..., None], C['ears'])


def _head(cv, p, dhead, nrm, lam):
    """The head itself: cel-shaded, furred, or skin with a specular sheen and cheek warmth; returns its cover."""
    u, v, g, st, key = cv.u, cv.v, p.g, p.st, p.key
    rx, ry = p.rx, p.ry
    skin_c = p.skin
    a_head = cv.cov(dhead)
    if st.look == 'cartoon':
        head_col = skin_c * _cel(lam, 0.80, 1.0, 0.35)[..., None]
    else:
        tex = R.fbm(key, (u + 1) / 2, (v + 1) / 2, 16, 2, 51)
        if st.look == 'fur':
            ntx, nty = col(g.nose_tip[0]), col(g.nose_tip[1])
            ang = np.arctan2(v - nty, u - ntx) / f32(2 * np.pi) + 0.5
            rad = np.sqrt((u - ntx) ** 2 + (v - nty) ** 2) / rx
            fur = R.angular_noise(key, ang + 0.012 * rad, 90, 61)
            fur2 = R.angular_noise(key, ang - 0.008 * rad, 170, 62)
            shade = (0.42 + 0.68 * lam) * (1 + 0.06 * fur + 0.05 * fur2 + 0.04 * tex)
            spec = 0.0
        else:
            shade = (0.40 + 0.66 * lam) * (1 + 0.025 * tex)
            spec = 0.18 * _spec(nrm, p.light, 18.0)
        face = st.look == 'photo'
        head_col = skin_c * shade[..., None] + (spec[..., None] * rgb([[255, 240, 225]]) if face else 0)
        if face:  # cheek warmth
            for side in (-1, 1):
                cxk, cyk, _ = g.proj(side * 0.45, 0.35, 0.0)
                blush = cv.cov(R.sd_ellipse(u - col(cxk), v - col(cyk), rx * 0.16, ry * 0.12), soft=0.12)
                head_col = head_col * (1 - 0.06 * blush[..., None] * rgb([[0, 255, 255]]))
    cv.paint(a_head, head_col, C['skin'])
    if st.ink:
        cv.paint(cv.stroke(dhead, 0.022), p.ink)
    return a_head


def _fur_patch(cv, p, dhead, lam, a_head):
    """A patch of the second fur colour over the crown, fading at its edge."""
    u, v = cv.u, cv.v
    cx, cy, rx, ry, part = p.cx, p.cy, p.rx, p.ry, p.part
    X = (u - cx - part) / rx
    dcap = R.sd_ellipse(u - cx - part * 0.6, v - cy + ry * 0.45, rx * 0.70, ry * 0.55)
    hairline = cy + ry * (-0.45 + 0.35 * np.abs(X) ** 2 + 0.12 * np.cos(X * 9))
    dline = v - hairline
    dhair = np.maximum(np.maximum(dcap, dline), dhead)
    a = cv.cov(dhair, soft=0.03)
    ang = np.arctan2(v - cy, u - cx) / f32(2 * np.pi) + 0.5
    fur = R.angular_noise(p.key, ang, 120, 63)
    cv.paint(a * 0.9, p.hair * ((0.45 + 0.6 * lam) * (1 + 0.12 * fur))[..., None], C['hair'], mask_alpha=a)


def _front_hair(cv, p, dhead, lam, a_head):
    """Hair over the forehead: a cap cut by a wavy hairline with optional bangs and side locks."""
    u, v, g, st, key = cv.u, cv.v, p.g, p.st, p.key
    cx, cy, rx, ry, hl, part = p.cx, p.cy, p.rx, p.ry, p.hl, p.part
    detail = p.detail
    ly = p.light[1]
    X = (u - cx - part) / rx
    bangs = (detail > 0.55).astype(f32)
    wave = 0.04 * np.sin(X * 9.0 + col(detail) * 20)
    drop = 0.45 + 1.1 * hl
    hline = -0.42 + 0.16 * col(bangs) * (1 - X * X) * smoothstep(0.2, 0.5, hl) + wave * (1 - hl)
    hline = hline + drop * smoothstep(0.64, 1.05, np.abs(X))  # side locks clear the eyes
    dline = v - (cy + ry * hline)
    dcap = R.sd_ellipse(u - cx - part * 0.5, v - cy + ry * 0.06, rx * (1.05 + 0.06 * hl), ry * (1.05 + 0.04 * hl))
    cartoon = st.look == 'cartoon'
    if cartoon:  # spiky fringe
        spikes = 0.05 * np.abs(np.sin(X * 7.0 + 0.5))
        dline = dline - ry * spikes
    dhair = np.maximum(dcap, dline)
    a = cv.cov(dhair)
    nh = _sphere_normal(cv, g.cx + g.rx * 0.0, g.cy - g.ry * 0.06, g.rx * 1.08, g.ry * 1.08)
    lam_h = _lambert(nh, p.light)
    if cartoon:
        hcol = p.hair * _cel(lam_h, 0.75, 1.0, 0.45)[..., None]
        sheen = cv.cov(R.sd_curve(u - cx - part, v - (cy - ry * 0.80), 0.0, 1.6 / rx, rx * 0.30, ry * 0.022))
        hcol = hcol + 0.25 * sheen[..., None]
    else:
        ang = np.arctan2(v - (cy - ry * 1.3), u - cx - part) / f32(2 * np.pi) + 0.5
        strands = R.angular_noise(key, ang, 160, 71)
        strands2 = R.angular_noise(key, ang, 60, 72)
        band = np.exp(-(((v - (cy - ry * 0.55 + ly * ry * 0.3)) / (ry * 0.12)) ** 2))
        sheen = 0.22 * band * (0.5 + 0.5 * lam_h) * (0.7 + 0.3 * strands)
        hcol = p.hair * ((0.38 + 0.72 * lam_h) * (1 + 0.13 * strands + 0.08 * strands2))[..., None]
        hcol = hcol + sheen[..., None] * rgb([[255, 245, 230]])
        # shadow the hair casts on the forehead
        fsh = cv.cov(dhair - ry * 0.06, soft=0.06) * (1 - a)
        cv.shade(1 - 0.25 * fsh, a_head)
    cv.paint(a, hcol, C['hair'])
    if st.ink:
        cv.paint(cv.stroke(dhair, 0.02), p.ink)


def _head_section(cv, p):
    """Back ears, head, front ears, front hair (on the head's window); returns the head's cover and light."""
    g, st = p.g, p.st
    dhead = _head_sd(cv, g, st, p.key)
    nrm = _sphere_normal(cv, g.cx, g.cy, g.rx, g.ry)
    lam = _lambert(nrm, p.light)
    st.ears(cv, p, front=False)
    a_head = _head(cv, p, dhead, nrm, lam)
    st.ears(cv, p, front=True)
    st.front_hair(cv, p, dhead, lam, a_head)
    return a_head, lam


def _brows(cv, p, a_head, lam):
    """Brows raised or lowered and slanted by the brow factor, thicker on cartoons."""
    u, v, g, st = cv.u, cv.v, p.g, p.st
    cartoon = st.look == 'cartoon'
    for k, side in enumerate((-1, 1)):
        bxp, byp, _ = g.brow_pts[k]
        fore = g.eye[k][2]
        half = g.ew * fore * (1.25 if not cartoon else 1.05)
        slope = -side * 0.35 * np.minimum(g.brow, 0) * 1.0 - side * 0.08 * np.maximum(g.brow, 0)
        arch = (0.6 + 0.4 * np.maximum(g.brow, 0)) / (g.ew * 6)
        th = g.ew * (0.16 if not cartoon else 0.20)
        lx_ = u - col(bxp)
        taper = 1 - 0.5 * smoothstep(0, 1, (lx_ * side) / col(half) * 0.5 + 0.5)
        d = R.sd_curve(lx_, v - col(byp), col(slope), col(arch), col(half), col(th) * taper)
        a = cv.cov(d)
        bcol = p.ink * 1.2 if cartoon else p.hair * 0.55 + rgb([[10, 8, 8]])
        cv.paint(a * (0.95 if cartoon else 0.85), bcol, C['brows'], mask_alpha=a)


def _eyes(cv, p, a_head, lam):
    """Sclera, iris, pupil (slit for pointy-eared animals), catch light and lid line, for both eyes."""
    u, v, g, st = cv.u, cv.v, p.g, p.st
    lx, ly, _ = p.light
    ink, px = p.ink, p.px
    cartoon, fur = st.look == 'cartoon', st.look == 'fur'
    escale = 1.0
    round_ = st.eye_round
    iris_c = rgb(_pick(st.iris_palette, p.d2))
    for side in (0, 1):
        d, a_, b_, ew, up, lo = _eye_shape(cv, g, side, escale, round_)
        ex, ey, fore = g.eye[side]
        a = cv.cov(d)
        ewn = col(g.ew)
        if st.look == 'photo':
            # socket shading around the eye
            sock = cv.cov(R.sd_ellipse(u - col(ex), v - col(ey) + ewn * 0.15, ew * 1.35, ewn * 0.75), soft=0.05)
            cv.shade(1 - 0.12 * sock, a_head)
        sclera = rgb([[245, 242, 236]]) if cartoon else rgb([[236, 230, 222]])
        if fur:
            sclera = iris_c * 1.05
        lidshadow = 1 - (0.25 if not cartoon else 0.0) * smoothstep(0.3, -0.6, b_ + up * 0.3 - up)
        # the mask keeps at least a ~1 px slit where the lids nearly meet
        dslit = np.maximum(np.abs(b_ - (lo - up) / 2) * ewn - px * 0.6, (np.abs(a_) - 0.85) * ew)
        cv.paint(a, sclera * lidshadow[..., None], C['eyes'], mask_alpha=cv.cov(np.minimum(d, dslit)))
        # iris and pupil (look slightly towards the turn)
        gaze = col(np.sin(g.yaw)) * 0.15
        ir = st.iris_radius
        di = np.sqrt(((a_ - gaze) / ir) ** 2 + (b_ / ir) ** 2) - 1
        ai = cv.cov(di * ewn * ir) * a
        shade_i = 0.75 + 0.35 * smoothstep(-0.8, 0.8, b_)
        cv.paint(ai, iris_c * shade_i[..., None])
        if fur:  # slit pupils for pointy ears, round for floppy ones
            pw = lerp(0.14, 0.45, col(g.droop))
            dp = np.sqrt(((a_ - gaze) / pw) ** 2 + (b_ / 0.55) ** 2) - 1
            ap = cv.cov(dp * ewn * pw) * a
        else:
            pr = ir * st.pupil_radius
            ap = cv.cov((np.sqrt((a_ - gaze) ** 2 + b_ * b_) - pr) * ewn) * a
        cv.paint(ap, rgb([[12, 10, 10]]))
        # catch light towards the light source
        hx = gaze + lx * 0.9 * ir * 0.5 - 0.15
        hy = ly * 0.6 * ir * 0.5 - 0.25 * ir
        rr = st.catch_light
        ah = cv.cov((np.sqrt((a_ - hx) ** 2 + (b_ - hy) ** 2) - rr) * ewn * 0.9) * a
        cv.paint(ah * 0.9, rgb([[255, 255, 255]]))
        if cartoon:
            ah2 = cv.cov((np.sqrt((a_ - hx - 0.35) ** 2 + (b_ - hy - 0.35) ** 2) - rr * 0.5) * ewn) * a
            cv.paint(ah2 * 0.9, rgb([[255, 255, 255]]))
        # upper lid / lash line
        lid_d = np.maximum(np.abs(b_ + up) * ewn - ewn * (0.10 if not cartoon else 0.16), (np.abs(a_) - 1.05) * ew)
        al = cv.cov(lid_d)
        cv.paint(al * (0.9 if not fur else 0.8), ink, C['eyes'], mask_alpha=al * (cv.cov(d + ewn * 0.2)))
        if cartoon:  # lower lid line and a lash flick
            lo_d = np.maximum(np.abs(b_ - lo) * ewn - ewn * 0.05, (np.abs(a_) - 0.8) * ew)
            cv.paint(cv.cov(lo_d) * 0.6, ink)
            side_s = -1 if side == 0 else 1
            fl = R.sd_segment(
                u,
                v,
                col(ex) + side_s * ew * 0.95,
                col(ey) - up * ewn * 0.2,
                col(ex) + side_s * ew * 1.3,
                col(ey) - up * ewn * 0.2 - ewn * 0.3,
            )[0]
            cv.paint(cv.cov(fl - ewn * 0.08), ink)


def _nose_muzzle(cv, p, a_head, lam):
    """Animal: whisker pads with whisker dots, and a dark triangular nose with a highlight."""
    u, v, g = cv.u, cv.v, p.g
    rx, ry, ink = p.rx, p.ry, p.ink
    lx = p.light[0]
    tx, ty, _ = g.nose_tip
    nw = rx * 0.17
    for side in (-1, 1):
        mx, my, _ = g.proj(side * 0.17, 0.56, 0.18)
        dm = R.sd_ellipse(u - col(mx), v - col(my), rx * 0.24, ry * 0.17)
        am = cv.cov(dm, soft=0.02) * a_head
        cv.paint(am * 0.85, rgb([[240, 232, 220]]) * (0.6 + 0.45 * lam)[..., None])
        # whisker dots
        for k in range(3):
            wx, wy, _ = g.proj(side * (0.12 + 0.07 * k), 0.53 + 0.04 * (k % 2), 0.2)
            cv.paint(cv.cov(R.sd_circle(u - col(wx), v - col(wy), rx * 0.012)) * 0.6, ink)
    tri = R.sd_convex(
        u,
        v,
        [(col(tx) - nw, col(ty) - ry * 0.05), (col(tx) + nw, col(ty) - ry * 0.05), (col(tx), col(ty) + ry * 0.075)],
    )
    dn = np.minimum(R.sd_ellipse(u - col(tx), v - col(ty) + ry * 0.015, nw, ry * 0.055), tri + rx * 0.01)
    an = cv.cov(dn)
    ncol = rgb([[45, 35, 36]]) * (0.8 + 0.4 * smoothstep(0.04, -0.04, (v - col(ty)) / ry))[..., None]
    cv.paint(an, ncol, C['nose'])
    hl_ = cv.cov(
        R.sd_ellipse(u - col(tx) + rx * 0.04 - lx * rx * 0.05, v - col(ty) + ry * 0.03, nw * 0.3, ry * 0.015), soft=0.01
    )
    cv.paint(hl_ * 0.5, rgb([[200, 200, 210]]))


def _nose_line(cv, p, a_head, lam):
    """Cartoon: a small hooked line plus the tip."""
    u, v = cv.u, cv.v
    tx, ty, _ = p.g.nose_tip
    dn = R.sd_ellipse(u - col(tx), v - col(ty), p.rx * 0.07, p.ry * 0.045)
    an = cv.cov(dn)
    cv.paint(an, p.skin * 0.82, C['nose'])
    cv.paint(cv.stroke(np.maximum(dn, -(v - col(ty))), 0.012), p.ink)


def _nose_photo(cv, p, a_head, lam):
    """Photo: bridge, tip and wings drawn mostly as shading, nostrils and the shadow below."""
    u, v, g = cv.u, cv.v, p.g
    rx, ry = p.rx, p.ry
    lx, ly, _ = p.light
    tx, ty, _ = g.nose_tip
    bx_, by_, _ = g.nose_base
    topx, topy, _ = g.nose_top
    dbr = R.sd_tapered(u, v, col(topx), col(topy), col(tx), col(ty) - ry * 0.02, rx * 0.07, rx * 0.10)
    dwing = R.sd_ellipse(u - col(bx_), v - col(by_) + ry * 0.015, rx * 0.19, ry * 0.075)
    dn = np.minimum(dbr, dwing)
    an = cv.cov(dn)
    side_shade = np.clip((u - col(tx)) / (rx * 0.18) * -lx[..., 0:1, 0:1] * 1.0, -1, 1)
    nshade = 1 - 0.10 * side_shade * cv.cov(dn, soft=0.03)
    cv.shade(nshade, a_head)
    cv.label(an, C['nose'])
    # shadow below the nose and on the side away from the light
    dsh = R.sd_ellipse(u - col(bx_) + lx * rx * 0.08, v - col(by_) - ry * 0.04, rx * 0.17, ry * 0.05)
    cv.shade(1 - 0.22 * cv.cov(dsh, soft=0.04) * (1 - an * 0.7), a_head)
    for side in (-1, 1):
        nx0, ny0, _ = g.proj(side * 0.09, 0.43, 0.16)
        dnos = R.sd_ellipse(u - col(nx0), v - col(ny0), rx * 0.045, ry * 0.022)
        cv.paint(cv.cov(dnos, soft=0.01) * 0.75, p.skin * 0.35)
    tip = cv.cov(
        R.sd_ellipse(u - col(tx) - lx * rx * 0.05, v - col(ty) - ly * ry * 0.03, rx * 0.06, ry * 0.035), soft=0.04
    )
    cv.add(0.12 * tip, rgb([[255, 245, 235]]))


def _mouth_frame(cv, g):
    """Mouth coordinates shared by the mouth painters: a_m in [-1, 1] along the mouth, the centre line,
    openness and half-widths."""
    u = cv.u
    m = SimpleNamespace()
    m.mcx, m.mcy, _ = g.mouth_c
    m.lcx, m.lcy, _ = g.mouth_l
    m.rcx, m.rcy, _ = g.mouth_r
    left = u < col(m.mcx)
    m.half = np.where(left, col(m.mcx - m.lcx), col(m.rcx - m.mcx))
    m.a_m = (u - col(m.mcx)) / m.half
    cy_corner = np.where(left, col(m.lcy), col(m.rcy))
    m.w = np.clip(1 - m.a_m * m.a_m, 0, 1)
    m.base = col(m.mcy) + (cy_corner - col(m.mcy)) * np.minimum(m.a_m * m.a_m, 1)
    m.op = col(g.mouth_open)
    m.hw = col((m.rcx - m.lcx) / 2)
    return m


def _mouth_animal(cv, p, a_head, lam):
    """A w-shaped mouth under the nose (two sagging arcs and the philtrum), opening to show the tongue."""
    u, v, g = cv.u, cv.v, p.g
    ry, px = p.ry, p.px
    m = _mouth_frame(cv, g)
    a_m, w, base, op, hw = m.a_m, m.w, m.base, m.op, m.hw
    tx, ty, _ = g.nose_tip
    gap = op * ry * 0.10 * np.sqrt(w)
    dm_open = np.maximum(np.maximum(np.abs(a_m) - 1, (base - v) / ry * 4), (v - base - gap) / ry * 4) * hw
    dm_open = np.where(op > 0.01, dm_open, f32(9))
    dline = None
    for ccx, ccy in ((m.lcx, m.lcy), (m.rcx, m.rcy)):
        midx, midy = (col(m.mcx) + col(ccx)) / 2, (col(m.mcy) + col(ccy)) / 2
        h = np.abs(col(ccx) - col(m.mcx)) / 2 + f32(1e-6)
        slope = (col(ccy) - col(m.mcy)) / (col(ccx) - col(m.mcx))
        sag = ry * 0.05
        c = -sag / (h * h)
        th = np.maximum(ry * 0.013, px * 0.6)
        da = R.sd_curve(u - midx, v - (midy - c * h * h), slope, c, h, th)
        dline = da if dline is None else np.minimum(dline, da)
    dphil = R.sd_segment(u, v, col(tx), col(ty), col(m.mcx), col(m.mcy))[0] - ry * 0.010
    dm = np.minimum(np.minimum(dline, dphil), dm_open)
    am = cv.cov(dm)
    am_mask = cv.cov(np.minimum(dline, dm_open) - px * 0.3)
    cv.paint(am, p.ink, C['mouth'], mask_alpha=am_mask)
    at = cv.cov(dm_open + ry * 0.01) * cv.cov(-(v - base - gap * 0.45))
    cv.paint(at, rgb([[220, 100, 110]]))


def _mouth_lips(cv, p, a_head, lam):
    """Lips (full and shaded on photos, thin on cartoons), the gap with teeth as the smile opens it."""
    u, v, g, st = cv.u, cv.v, p.g, p.st
    ry, px, ink = p.ry, p.px, p.ink
    m = _mouth_frame(cv, g)
    a_m, w, base, op, hw, half = m.a_m, m.w, m.base, m.op, m.hw, m.half
    face = st.look == 'photo'
    lip_u = ry * (0.045 if face else 0.02) * w**0.6
    lip_l = ry * (0.060 if face else 0.02) * w**0.8
    gap = op * ry * (0.09 if face else 0.13) * w**0.7
    top_ = base - lip_u - gap * 0.5
    bot_ = base + lip_l + gap * 0.5
    dm = np.maximum(np.maximum((np.abs(a_m) - 1) * half, top_ - v), v - bot_)
    am = cv.cov(dm)
    lip = lerp(p.skin, rgb([[190, 70, 80]]), 0.42 if face else 0.25) * (0.85 if face else 1.0)
    if face:
        lipshade = 0.75 + 0.35 * smoothstep(0, 1, (v - base) / (ry * 0.05))
        cv.paint(am, lip * lipshade[..., None], C['mouth'])
    else:
        cv.paint(am, lip, C['mouth'])
    dgap = np.maximum(np.maximum((np.abs(a_m) - 1) * half, base - gap * 0.5 - v), v - base - gap * 0.5)
    ag = cv.cov(dgap) * (op > 0)
    cv.paint(ag, rgb([[70, 20, 25]]))
    teeth = cv.cov(np.maximum(dgap, v - (base - gap * 0.5 + gap * 0.42)))
    cv.paint(teeth * ag * 0.95, rgb([[245, 240, 230]]))
    dl = np.maximum(np.abs(v - base) - np.maximum(gap * 0.5, ry * 0.004), (np.abs(a_m) - 1.0) * half)
    line_a = cv.cov(dl - (px * 0.35 if face else px * 0.6))
    cv.paint(
        line_a * (0.55 if face else 0.95),
        rgb([[70, 30, 35]]) if face else ink,
        C['mouth'],
        mask_alpha=cv.cov(dl - px * 0.6),
    )
    if st.ink:
        cv.paint(cv.stroke(dm, 0.012) * (1 - line_a), ink * 1.5)
    if face:  # lower-lip highlight and the shadow under it
        hlm = cv.cov(R.sd_ellipse(u - col(m.mcx), v - bot_ + lip_l * 0.6, hw * 0.35, ry * 0.012), soft=0.02)
        cv.add(0.08 * hlm * am, rgb([[255, 255, 255]]))
        dsh = R.sd_ellipse(u - col(m.mcx), v - col(m.mcy) - ry * 0.14, hw * 0.5, ry * 0.04)
        cv.shade(1 - 0.10 * cv.cov(dsh, soft=0.05), a_head)


def _glasses(cv, p, a_head, lam):
    """Rims with faint lens reflections, the bridge and temples to the visible ears (factor glasses > 0.5)."""
    u, v, g, st = cv.u, cv.v, p.g, p.st
    gl = col(p.fac[:, F['glasses']] > 0.5)
    if not np.any(gl):
        return
    frame = rgb(_pick([[20, 20, 22], [90, 50, 30], [150, 120, 60], [40, 40, 70]], p.d3))
    if st.ink:
        frame = p.ink
    th = g.ew * 0.12
    rims = []
    for k in range(2):
        ex, ey, fore = g.eye[k]
        hw_ = g.ew * fore * 1.45
        hh = g.ew * 1.05
        d = R.sd_box(u - col(ex), v - col(ey) - col(g.ew) * 0.1, col(hw_), col(hh), col(hh) * 0.6)
        rims.append((d, ex, ey, hw_))
        alens = cv.cov(d) * gl
        refl = smoothstep(-1, 1, (u - col(ex)) / col(hw_) - (v - col(ey)) / col(hh))
        cv.paint(alens * (0.10 + 0.10 * refl), rgb([[230, 240, 255]]))
    strokes = np.minimum(np.abs(rims[0][0]), np.abs(rims[1][0])) - col(th)
    # bridge between the inner rim edges, temples to the ears
    x0 = col(rims[0][1] + rims[0][3])
    x1 = col(rims[1][1] - rims[1][3])
    ymid = col((rims[0][2] + rims[1][2]) / 2) - col(g.ew) * 0.25
    dbr = R.sd_segment(u, v, x0, ymid, x1, ymid)[0] - col(th) * 0.8
    strokes = np.minimum(strokes, dbr)
    for k, sgn in ((0, -1), (1, 1)):
        ex0 = col(rims[k][1] + sgn * rims[k][3])
        ear_x = col(g.ears[k][0])
        ey0 = col(rims[k][2]) - col(g.ew) * 0.3
        dt = R.sd_segment(u, v, ex0, ey0, ear_x, ey0 - col(g.ew) * 0.1)[0] - col(th) * 0.8
        strokes = np.minimum(strokes, np.where(col(g.ears[k][2]) > 0.0, dt, f32(9)))
    ag = cv.cov(strokes) * gl
    cv.paint(ag, frame, C['glasses'])


# ----------------------------------------------------------------------------
# The three head domains


_HUMAN = dict(
    head_width=f32(1.0),
    eye_phi=f32(0.0),
    nose_phi=(0.37, 0.42),
    mouth_phi=f32(0.68),
    mouth_theta=f32(0.34),
    skin_palette=SKIN,
    iris_palette=IRIS,
    body_offset=2.32,
    neck_width=0.40,
    ears=_ears_human,
    back_hair=_back_hair,
    front_hair=_front_hair,
    brows=_brows,
    mouth=_mouth_lips,
    glasses=_glasses,
)

STYLES: dict[str, HeadStyle] = {
    'faces': HeadStyle(
        look='photo',
        eye_width=f32(0.19),
        nose_lift=0.30,
        bg_saturation=0.32,
        saturate=False,
        ink=False,
        eye_round=0.0,
        iris_radius=0.50,
        pupil_radius=0.45,
        catch_light=0.16,
        background=_background_photo,
        nose=_nose_photo,
        **_HUMAN,
    ),
    'toons': HeadStyle(
        look='cartoon',
        eye_width=f32(0.27),
        nose_lift=0.12,
        bg_saturation=0.55,
        saturate=True,
        ink=True,
        eye_round=0.55,
        iris_radius=0.62,
        pupil_radius=0.55,
        catch_light=0.24,
        background=_background_flat,
        nose=_nose_line,
        **_HUMAN,
    ),
    'animals': HeadStyle(
        look='fur',
        head_width=f32(1.08),
        eye_phi=f32(0.02),
        eye_width=f32(0.22),
        nose_lift=0.22,
        nose_phi=(0.40, 0.44),
        mouth_phi=f32(0.72),
        mouth_theta=f32(0.30),
        skin_palette=FUR,
        iris_palette=ANIMAL_IRIS,
        bg_saturation=0.32,
        saturate=False,
        ink=False,
        body_offset=2.05,
        neck_width=0.80,
        eye_round=0.35,
        iris_radius=0.95,
        pupil_radius=0.45,
        catch_light=0.16,
        background=_background_photo,
        ears=_ears_animal,
        front_hair=_fur_patch,
        nose=_nose_muzzle,
        mouth=_mouth_animal,
        animal_ears=True,
    ),
}


def paint_head_domain(cv: R.Canvas, fac: np.ndarray, domain: str, key: np.ndarray) -> Geometry:
    """Paint ``fac [N, F]`` heads of ``domain`` into ``cv``; returns their geometry (landmarks come from it).

    Each part is evaluated on the window of pixels it can reach only (a large saving at 256x256)."""
    st = STYLES[domain]
    g = geometry(fac, domain)
    p = _context(cv, fac, st, key, g)
    st.background(cv, p)
    if st.back_hair is not None:
        bwin = cv.window(
            float(np.min(g.cx - 1.6 * g.rx)), float(np.max(g.cx + 1.6 * g.rx)), float(np.min(g.cy - 1.22 * g.ry)), 1.0
        )
        st.back_hair(bwin, p)
    lwin = cv.window(-1.0, 1.0, float(np.min(g.cy + 0.5 * g.ry)), 1.0)
    _body(lwin, p)

    # ears, head, front hair: evaluated on the head's window only
    hu0, hu1 = g.cx - 1.75 * g.rx, g.cx + 1.75 * g.rx
    hv0, hv1 = g.cy - 1.22 * g.ry, np.maximum(g.chin[1] + 0.1 * g.ry, g.cy + 1.15 * g.ry)
    if st.animal_ears:
        for e in g.ears:
            for px_, py_ in ((e.ax, e.ay), (e.bx, e.by)):
                hu0, hu1 = np.minimum(hu0, px_ - e.r0 - 0.05), np.maximum(hu1, px_ + e.r0 + 0.05)
                hv0, hv1 = np.minimum(hv0, py_ - e.r0 - 0.05), np.maximum(hv1, py_ + e.r0 + 0.05)
    hwin = cv.window(float(np.min(hu0)), float(np.max(hu1)), float(np.min(hv0)), float(np.max(hv1)))
    a_head_w, lam_w = _head_section(hwin, p)
    a_head = np.zeros(cv.mask.shape, f32)
    lam = np.zeros(cv.mask.shape, f32)
    a_head[:, hwin.rows, hwin.cols] = a_head_w
    lam[:, hwin.rows, hwin.cols] = lam_w

    # facial features, evaluated on the pixels they can reach only
    u0 = float(np.min(g.cx - 1.6 * g.rx))
    u1 = float(np.max(g.cx + 1.6 * g.rx))
    v0 = float(np.min(g.cy - 0.75 * g.ry))
    v1 = float(np.max(g.chin[1] + 0.05 * g.ry))
    win = cv.window(u0, u1, v0, v1)
    a_win, lam_win = win.crop(a_head), win.crop(lam)
    for painter in (st.brows, _eyes, st.nose, st.mouth, st.glasses):
        if painter is not None:
            painter(win, p, a_win, lam_win)
    return g
