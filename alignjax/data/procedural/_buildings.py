"""``buildings``: the distant child. A gabled house (a church with a spired tower
when ``glasses`` is set) seen from a viewpoint that follows yaw/pitch.

Correspondence with the head domains is only global: position, size and aspect
of the building follow the head's; yaw/pitch turn the viewpoint; the walls take
the skin tone, the roof the hair colour, the sky the background colour; eye
openness sets the window height, smile arches the door, brow steepens the
roof, hair length deepens the building, the light factors light it.

The building is a set of planar faces under an orthographic camera, so each
face maps affinely to the screen: doors and windows are drawn as boxes in the
face's own coordinates (pulled back through the inverse map).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from alignjax.data.procedural import _raster as R
from alignjax.data.procedural._factors import F, hash_uniform
from alignjax.data.procedural._heads import HAIR, SKIN
from alignjax.data.procedural._raster import col, f32, rgb, smoothstep

BUILDING_CLASSES = ('sky', 'ground', 'wall', 'roof', 'window', 'door', 'tower')
B = {name: k for k, name in enumerate(BUILDING_CLASSES)}
BUILDING_LANDMARKS = (
    'roof_apex',
    'door',
    'window_left',
    'window_right',
    'base_left',
    'base_right',
    'tower_top',
)

WALL = (SKIN * 0.85 + np.array([200, 200, 200], f32) * 0.15).astype(f32)


class Camera:
    """Orthographic view: yaw about the vertical axis, then pitch (+: from above)."""

    def __init__(self, yaw, pitch, k, ox, oy):
        self.cy, self.sy = np.cos(yaw).astype(f32), np.sin(yaw).astype(f32)
        self.cp, self.sp = np.cos(pitch).astype(f32), np.sin(pitch).astype(f32)
        self.k, self.ox, self.oy = k, ox, oy

    def view(self, x, y, z):
        """World (x right, y up, z towards the viewer) -> (screen x, screen up, depth)."""
        x1 = x * self.cy + z * self.sy
        z1 = -x * self.sy + z * self.cy
        up = y * self.cp - z1 * self.sp
        depth = y * self.sp + z1 * self.cp
        return x1, up, depth

    def screen(self, x, y, z):
        x1, up, _ = self.view(x, y, z)
        return (self.ox + self.k * x1).astype(f32), (self.oy - self.k * up).astype(f32)

    def normal(self, x, y, z):
        """World normal -> screen normal (x right, v down, z towards the viewer)."""
        x1, up, depth = self.view(x, y, z)
        return x1, -up, depth

    def plane(self, origin, e1, e2):
        """Affine map of the plane ``origin + s*e1 + t*e2``; returns a function
        from screen (u, v) to plane coords (s, t), and the local pixel scale."""
        o = self.screen(*origin)
        a = self.screen(*(origin[i] + e1[i] for i in range(3)))
        b = self.screen(*(origin[i] + e2[i] for i in range(3)))
        m11, m21 = a[0] - o[0], a[1] - o[1]
        m12, m22 = b[0] - o[0], b[1] - o[1]
        det = m11 * m22 - m12 * m21
        det = np.where(np.abs(det) < 1e-6, f32(1e-6), det)
        i11, i12, i21, i22 = m22 / det, -m12 / det, -m21 / det, m11 / det
        scale = np.sqrt(np.abs(det))

        def inv(u, v):
            du, dv = u - col(o[0]), v - col(o[1])
            return col(i11) * du + col(i12) * dv, col(i21) * du + col(i22) * dv

        return inv, scale


def _lit(n, light):
    lx, ly, lz = light
    x, y, z = n
    return np.clip(col(x) * lx + col(y) * ly + col(z) * lz, 0, 1)


def paint_buildings(cv: R.Canvas, fac: np.ndarray, key: np.ndarray):
    n = len(fac)
    u, v = cv.u, cv.v
    yaw = fac[:, F['yaw']] * f32(0.6)
    pitch = fac[:, F['pitch']] * f32(0.35)
    s, asp = fac[:, F['scale']], fac[:, F['aspect']]
    W = f32(1.0) * np.sqrt(asp) * np.ones(n, f32)
    H = f32(0.62) / np.sqrt(asp)
    D = f32(0.45) + f32(0.75) * fac[:, F['hair_length']]
    Hr = W * (f32(0.28) + f32(0.16) * (fac[:, F['brow']] + 1))
    k = f32(0.95) * s
    ox = fac[:, F['pos_x']] * f32(1.0)
    oy = f32(0.55) + fac[:, F['pos_y']]
    cam = Camera(yaw, pitch, k, ox, oy)
    tower = fac[:, F['glasses']] > 0.5
    d1 = hash_uniform(key, 11).astype(f32)
    d2 = hash_uniform(key, 12).astype(f32)

    lx, ly = fac[:, F['light_x']], fac[:, F['light_y']]
    lz = np.full_like(lx, 1.4)
    ln = np.sqrt(lx * lx + ly * ly + lz * lz)
    light = (col(lx / ln), col(ly / ln), col(lz / ln))

    wall = rgb(R.palette(WALL, fac[:, F['skin_tone']]))
    roof = rgb(R.palette(HAIR, fac[:, F['hair_color']]) * 0.9)
    sky = R.hsv_to_rgb(fac[:, F['bg_hue']], np.full(n, 0.35, f32), 0.35 + 0.62 * fac[:, F['bg_value']])
    sky_c = rgb(sky)
    ground_c = rgb(R.hsv_to_rgb(0.22 + 0.12 * d1, 0.35 + 0.2 * d2, 0.35 + 0.25 * fac[:, F['bg_value']]))
    door_c = rgb(R.hsv_to_rgb(d1, 0.35 + 0.4 * d2, 0.25 + 0.35 * hash_uniform(key, 13).astype(f32)))

    # ---- sky and ground -------------------------------------------------------------
    grad = 1.05 - 0.25 * (v + 1) / 2
    clouds = R.fbm(key, (u + 1) / 2, (v + 1) / 2 * 2, 3, 3, 101)
    cv.img[:] = sky_c * (grad * (1 + 0.05 * clouds))[..., None]
    horizon = col(oy) - col(k) * (f32(0.25) + f32(1.6) * col(np.sin(pitch))) * 0.5 - 0.05
    dg = horizon - v
    tex = R.fbm(key, (u + 1) / 2, (v + 1) / 2, 12, 2, 102)
    g_col = ground_c * (0.85 + 0.25 * smoothstep(-0.2, 1.0, v) + 0.08 * tex)[..., None]
    cv.paint(cv.cov(dg), g_col, B['ground'])

    def poly(pts3):
        return R.sd_convex(u, v, [tuple(col(c) for c in cam.screen(*p)) for p in pts3])

    zf, zb = D / 2, -D / 2
    hw = W / 2
    side = np.where(yaw > 0, f32(-1), f32(1))  # the visible side wall: -x when turned right
    sx = side * hw

    # ---- cast shadow ---------------------------------------------------------------------------
    shx = -col(lx / ln) * 0.35 * col(k)
    shy = -col(ly / ln) * 0.08 * col(k) + 0.04
    foot = [(-hw, 0, zf), (hw, 0, zf), (hw, 0, zb), (-hw, 0, zb)]
    pts = [cam.screen(*p) for p in foot]
    dshadow = R.sd_convex(u - shx, v - shy, [(col(a), col(b)) for a, b in pts])
    cv.shade(1 - 0.35 * cv.cov(dshadow, soft=0.12) * (v > horizon))

    # ---- roof slopes (far one first), side wall ----------------------------------------------------
    ridge_f, ridge_b = (0 * W, H + Hr, zf), (0 * W, H + Hr, zb)
    over = f32(1.08)  # eaves overhang
    for sgn in (-side, side):
        ex = sgn * hw * over
        slope = poly([(ex, H - 0.04 * Hr, zf + 0.04), (ex, H - 0.04 * Hr, zb - 0.04), ridge_b, ridge_f])
        nrm = cam.normal(sgn * Hr, hw, 0 * W)
        nl = np.sqrt(Hr * Hr + hw * hw)
        lam = _lit((nrm[0] / nl, nrm[1] / nl, nrm[2] / nl), light)
        tiles = 0.92 + 0.08 * np.sin((v - col(cam.screen(0, H + Hr, zf)[1])) / col(k) * 90)
        cv.paint(cv.cov(slope), roof * ((0.45 + 0.6 * lam) * tiles)[..., None], B['roof'])

    side_d = poly([(sx, 0, zf), (sx, 0, zb), (sx, H, zb), (sx, H, zf)])
    lam_side = _lit(cam.normal(side, 0 * W, 0 * W), light)
    wall_tex = R.fbm(key, (u + 1) / 2, (v + 1) / 2, 20, 2, 103)
    cv.paint(cv.cov(side_d), wall * ((0.40 + 0.55 * lam_side) * (1 + 0.05 * wall_tex))[..., None], B['wall'])
    # side windows
    inv_s, _ = cam.plane((sx, 0 * W, zf), (0 * W, 0 * W, -np.ones(n, f32)), (0 * W, np.ones(n, f32), 0 * W))
    ss, st = inv_s(u, v)
    eo = col(fac[:, F['eye_open']])
    win_h = col(H) * (0.10 + 0.12 * eo)
    pitch_s = col(D) / 3
    sl = (ss % pitch_s) - pitch_s / 2
    dws = np.maximum(R.sd_box(sl, st - col(H) * 0.55, col(W) * 0.06, win_h), np.maximum(-ss, ss - col(D))) * col(k)
    aws = cv.cov(dws) * cv.cov(side_d)
    cv.paint(aws, sky_c * 0.35 + rgb([[20, 25, 35]]), B['window'])

    # ---- tower (church) -------------------------------------------------------------------------------
    tw = W * 0.30
    th = (H + Hr) * 1.25
    tx0, tx1 = hw, hw + tw
    tz0, tz1 = zf - tw, zf
    spire = th + tw * 2.0
    tower_top = cam.screen(hw + tw / 2, spire, zf - tw / 2)
    tvis = col(tower)
    # the tower's visible side (its right face when turned left)
    t_side_x = np.where(yaw > 0, tx0, tx1)
    tside = poly([(t_side_x, 0, tz1), (t_side_x, 0, tz0), (t_side_x, th, tz0), (t_side_x, th, tz1)])
    tfront = poly([(tx0, 0, tz1), (tx1, 0, tz1), (tx1, th, tz1), (tx0, th, tz1)])
    apex = (hw + tw / 2, spire, zf - tw / 2)
    sp_front = poly([(tx0 - 0.02, th, tz1 + 0.02), (tx1 + 0.02, th, tz1 + 0.02), apex])
    sp_side = poly([(t_side_x, th, tz1 + 0.02), (t_side_x, th, tz0 - 0.02), apex])
    lam_tf = _lit(cam.normal(0 * W, 0 * W, np.ones(n, f32)), light)
    tower_alpha = cv.cov(np.minimum(np.minimum(tside, tfront), np.minimum(sp_front, sp_side))) * tvis
    # side face visible only when turned left (we see +x faces)
    cv.paint(cv.cov(tside) * tvis * col(yaw <= 0), wall * (0.40 + 0.55 * lam_side)[..., None], B['tower'])
    cv.paint(cv.cov(tfront) * tvis, wall * (0.95 * (0.40 + 0.6 * lam_tf))[..., None], B['tower'])
    cv.paint(cv.cov(sp_side) * tvis * col(yaw <= 0), roof * 0.6, B['tower'])
    cv.paint(cv.cov(sp_front) * tvis, roof * (0.55 + 0.45 * lam_tf)[..., None], B['tower'])
    # a ball finial on the spire (also keeps the sharp tip visible at low res)
    dfin = np.sqrt((u - col(tower_top[0])) ** 2 + (v - col(tower_top[1])) ** 2) - np.maximum(
        col(tw * k) * 0.07, cv.px * 0.7
    )
    cv.paint(cv.cov(dfin) * tvis, rgb([[200, 170, 80]]), B['tower'])
    inv_t, _ = cam.plane((tx0, 0 * W, tz1), (np.ones(n, f32), 0 * W, 0 * W), (0 * W, np.ones(n, f32), 0 * W))
    ts, tt = inv_t(u, v)
    dtw = R.sd_box(ts - col(tw) / 2, tt - col(th) * 0.78, col(tw) * 0.16, col(th) * 0.07, col(tw) * 0.15) * col(k)
    cv.paint(cv.cov(dtw) * tvis * cv.cov(tfront), rgb([[30, 30, 40]]), B['window'])
    del tower_alpha

    # ---- facade with gable ----------------------------------------------------------------------------------
    facade = poly([(-hw, 0, zf), (hw, 0, zf), (hw, H, zf), (0 * W, H + Hr, zf), (-hw, H, zf)])
    lam_f = _lit(cam.normal(0 * W, 0 * W, np.ones(n, f32)), light)
    inv_f, _ = cam.plane((-hw, 0 * W, zf), (np.ones(n, f32), 0 * W, 0 * W), (0 * W, np.ones(n, f32), 0 * W))
    fs, ft = inv_f(u, v)
    bricks = 1 + 0.04 * np.sin(ft / col(H) * 80) * (col(fac[:, F['skin_tone']]) > 0.5)
    corners = [cam.screen(sg * hw, 0 * W, zf) for sg in (-1, 1)]
    dcorner = np.minimum(*[np.sqrt((u - col(cx_)) ** 2 + (v - col(cy_)) ** 2) for cx_, cy_ in corners]) - cv.px * 0.6
    fmask = cv.cov(np.minimum(facade, dcorner))  # keep the base corners in the mask at low res
    cv.paint(
        cv.cov(facade),
        wall * ((0.42 + 0.62 * lam_f) * (1 + 0.05 * wall_tex) * bricks)[..., None],
        B['wall'],
        mask_alpha=fmask,
    )
    # roof trim over the gable edges (the overhang seen from the front)
    trim_w = Hr * 0.16
    for sgn in (-1, 1):
        a = cam.screen(sgn * hw * over, H - Hr * (over - 1) * 1.0, zf + 0.03)
        b = cam.screen(0 * W, H + Hr + trim_w * 0.4, zf + 0.03)
        dtr = R.sd_segment(u, v, col(a[0]), col(a[1]), col(b[0]), col(b[1]))[0] - col(trim_w * k) * 0.5
        cv.paint(cv.cov(dtr), roof * (0.5 + 0.3 * lam_f)[..., None], B['roof'])

    # door: arched when smiling
    door_w = W * 0.10
    door_h = H * 0.50
    sm = col(fac[:, F['smile']])
    arch = np.clip(sm, 0, 1)
    dx_, dy_ = fs - col(hw), ft
    d_rect = R.sd_box(dx_, dy_ - col(door_h) / 2, col(door_w), col(door_h) / 2)
    d_arch = R.sd_ellipse(dx_, dy_ - col(door_h), col(door_w), col(door_w) * (0.2 + 1.0 * arch))
    d_door = np.minimum(d_rect, np.where(dy_ > col(door_h), d_arch, f32(9))) * col(k)
    cv.paint(cv.cov(d_door), door_c * (0.7 + 0.3 * lam_f)[..., None], B['door'])
    # knob
    cv.paint(
        cv.cov((np.sqrt((dx_ - col(door_w) * 0.6) ** 2 + (dy_ - col(door_h) * 0.45) ** 2) - col(W) * 0.012) * col(k)),
        rgb([[220, 200, 120]]),
    )

    # windows on both sides of the door (+ upper row under the gable when tall)
    win_w = W * 0.11
    wy = H * 0.50
    wins = []
    for wx in (W * 0.24, W * 0.76):
        dxw, dyw = fs - col(wx), ft - col(wy)
        dwin = R.sd_box(dxw, dyw, col(win_w), win_h) * col(k)
        frame = cv.cov(dwin - col(k * W) * 0.012)
        cv.paint(frame, rgb([[235, 232, 225]]))
        refl = 0.5 + 0.5 * smoothstep(-1, 1, dxw / col(win_w) - dyw / win_h)
        glass = sky_c * (0.35 + 0.3 * refl)[..., None] + rgb([[10, 12, 20]])
        cv.paint(cv.cov(dwin), glass, B['window'])
        mull = np.minimum(np.abs(dxw), np.abs(dyw)) * col(k) - col(k * W) * 0.006
        cv.paint(cv.cov(mull) * cv.cov(dwin), rgb([[235, 232, 225]]))
        wins.append((wx, wy))
    # round gable window
    dgw = (
        np.sqrt(((fs - col(hw)) / col(W)) ** 2 + ((ft - col(H + Hr * 0.4)) / col(W)) ** 2) - col(Hr / W) * 0.18
    ) * col(k * W)
    cv.paint(cv.cov(dgw), sky_c * 0.4 + rgb([[15, 15, 25]]), B['window'])

    # ---- landmarks ---------------------------------------------------------------------------------------------------
    pts = [
        cam.screen(0 * W, H + Hr, zf),
        cam.screen(0 * W, door_h * 0.5, zf),
        cam.screen(-hw + W * 0.24, wy, zf),
        cam.screen(-hw + W * 0.76, wy, zf),
        cam.screen(-hw, 0 * W, zf),
        cam.screen(hw, 0 * W, zf),
        tower_top,
    ]
    lm = np.stack([np.stack(p, -1) for p in pts], 1).astype(f32)
    vis = np.ones(lm.shape[:2], bool)
    vis[:, 6] = tower
    return SimpleNamespace(landmarks=lm, visible=vis)
