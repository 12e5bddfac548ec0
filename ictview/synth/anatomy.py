"""Head phantom: a parametric adult head sampled on any axial grid.

The head is described by continuous parameters (HeadParams) and rendered one
axial slice at a time, so the thick (5 mm) series, its thin (0.625 mm)
companion and the lesions drawn for the exam all agree.

Coordinates in a slice, in mm, in a frame rotated with the head (yaw):
X lateral (+ = patient left = image right), Y antero-posterior (+ = posterior =
image down), theta = atan2(Y, X). Height is t in [0, 1]: 0 at the skull base,
1 at the vertex; Grid maps slices to t. `d` is the radial distance (mm) to the
inner table: negative inside the skull.

Partial volume comes from soft edges: every structure is a fraction map in
[0, 1] whose edge ramps over one pixel, and the image is painted layer by layer
(value = old * (1 - f) + new * f).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from scipy import ndimage

from ictview.synth.sites import SiteProfile


def soft(x: np.ndarray | float, width: float) -> np.ndarray:
    """1 where x < -width/2, 0 where x > width/2, linear between (a one-pixel box filter)."""
    return np.clip(0.5 - np.asarray(x, dtype=np.float32) / np.float32(width), 0.0, 1.0)


def paint(img: np.ndarray, frac: np.ndarray, value: float | np.ndarray) -> None:
    """In place: img = img * (1 - frac) + value * frac."""
    img += frac * (np.asarray(value, dtype=np.float32) - img)


def ellipse_dist(x: np.ndarray, y: np.ndarray, x0: float, y0: float, a: float, b: float,
                 angle: float = 0.0) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipse boundary (negative inside)."""
    c, s = np.cos(angle), np.sin(angle)
    xr = (x - x0) * c + (y - y0) * s
    yr = -(x - x0) * s + (y - y0) * c
    e = np.sqrt((xr / a) ** 2 + (yr / b) ** 2)
    return ((e - 1.0) * min(a, b)).astype(np.float32)


def segment_dist(x: np.ndarray, y: np.ndarray, p0: tuple[float, float],
                 p1: tuple[float, float]) -> np.ndarray:
    """Distance (mm) from points to the segment p0-p1."""
    ax, ay = p0
    vx, vy = p1[0] - ax, p1[1] - ay
    L2 = vx * vx + vy * vy
    u = np.clip(((x - ax) * vx + (y - ay) * vy) / L2, 0.0, 1.0)
    return np.hypot(x - ax - u * vx, y - ay - u * vy).astype(np.float32)


def bump(t: float, center: float, half: float) -> float:
    """Smooth 0..1 profile over |t - center| < half (used for vertical extents)."""
    a = (t - center) / half
    return float(max(0.0, 1.0 - a * a))


@dataclass(frozen=True)
class HeadParams:
    A: float  # brain half-width (lateral), mm, at the widest level
    B: float  # brain half-length (antero-posterior), mm
    cx: float  # head centre relative to the image centre, mm
    cy: float
    yaw: float  # rad
    egg: float  # posterior part wider than the frontal
    harmonics: tuple[tuple[int, float, float], ...]  # (k, amplitude, phase) of the outline
    skull_mm: float
    skull_var: tuple[float, float]  # (relative amplitude, phase) of thickness over theta
    scalp_mm: float
    atrophy: float  # 0..1: wider sulci, larger ventricles
    t_lo: float  # height of the first thick slice's bottom edge
    t_hi: float
    gm: float
    wm: float
    csf: float
    deep: float
    scalp: float
    table: float
    diploe: float
    base_bone: float
    sulci_n: int
    sulci_phase: tuple[float, float, float]
    pv_bone: float  # 0..1: bony irregularity at the skull base / vertex
    base_bumps: tuple[tuple[float, float, float], ...]  # (theta, amplitude mm, width rad)


def draw_head(rng: np.random.Generator, site: SiteProfile) -> HeadParams:
    scale = rng.uniform(*site.head_scale)
    aspect = rng.uniform(*site.aspect)
    A = 67.0 * scale * np.sqrt(1.25 / aspect)
    B = A * aspect
    ks = (2, 3, 4, 5)
    harm = tuple((k, float(rng.normal(0, 0.012)), float(rng.uniform(0, 2 * np.pi))) for k in ks)
    pv = float(rng.uniform(*site.pv_bone))
    n_bumps = int(rng.integers(3, 7))
    bumps = tuple(
        (float(rng.uniform(-np.pi, np.pi)), float(rng.uniform(1.0, 4.0)),
         float(rng.uniform(0.08, 0.25)))
        for _ in range(n_bumps)
    )
    gm = rng.uniform(33.0, 37.0)
    return HeadParams(
        A=float(A), B=float(B),
        cx=float(rng.normal(0, 4.0)), cy=float(rng.normal(0, 5.0)),
        yaw=float(rng.normal(0, 0.06)), egg=float(rng.uniform(0.02, 0.08)), harmonics=harm,
        skull_mm=float(rng.uniform(5.0, 8.0)),
        skull_var=(float(rng.uniform(0.1, 0.3)), float(rng.uniform(0, 2 * np.pi))),
        scalp_mm=float(rng.uniform(4.0, 7.0)),
        atrophy=float(rng.uniform(*site.atrophy)),
        t_lo=float(rng.uniform(0.0, 0.05)), t_hi=float(rng.uniform(0.92, 0.97)),
        gm=float(gm), wm=float(gm - rng.uniform(8.0, 11.0)), csf=float(rng.uniform(3.0, 9.0)),
        deep=float(gm + rng.uniform(-1.0, 2.0)), scalp=float(rng.uniform(30.0, 45.0)),
        table=float(rng.uniform(1300.0, 1600.0)), diploe=float(rng.uniform(650.0, 900.0)),
        base_bone=float(rng.uniform(1150.0, 1500.0)),
        sulci_n=int(rng.integers(26, 36)),
        sulci_phase=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, 3)),
        pv_bone=pv, base_bumps=bumps,
    )


@dataclass(frozen=True)
class Grid:
    matrix: int
    pixel_mm: float
    t: tuple[float, ...]  # height of each slice centre
    thickness_mm: float
    mm_per_t: float  # mm of head height per unit t

    @property
    def slices(self) -> int:
        return len(self.t)


def thick_grid(head: HeadParams, matrix: int, pixel_mm: float, slices: int,
               thickness_mm: float) -> Grid:
    span = head.t_hi - head.t_lo
    t = tuple(head.t_lo + (k + 0.5) / slices * span for k in range(slices))
    return Grid(matrix, pixel_mm, t, thickness_mm, slices * thickness_mm / span)


def thin_grid(thick: Grid, slices: int, thickness_mm: float) -> Grid:
    """Thin slices centred on the thick stack: same head, finer sampling in z."""
    mid = 0.5 * (thick.t[0] + thick.t[-1])
    step = thickness_mm / thick.mm_per_t
    t = tuple(mid + (j - (slices - 1) / 2) * step for j in range(slices))
    return Grid(thick.matrix, thick.pixel_mm, t, thickness_mm, thick.mm_per_t)


@dataclass
class SliceFields:
    """Geometry and tissue fractions of one slice; lesions and mimics are placed with these."""
    t: float
    s: float  # brain outline scale at this height
    X: np.ndarray  # head-frame coordinates (mm)
    Y: np.ndarray
    r: np.ndarray
    theta: np.ndarray
    d: np.ndarray  # radial distance to the inner table (mm, negative inside)
    R: np.ndarray  # inner-table radius along theta (mm)
    intracranial: np.ndarray  # fraction inside the inner table, base bone excluded
    brain: np.ndarray  # brain tissue (grey + white), CSF spaces excluded
    sulci: np.ndarray
    ventricles: np.ndarray
    cisterns: np.ndarray  # basal cisterns, Sylvian and interhemispheric fissures
    falx: np.ndarray  # falx cerebri line
    sinus: np.ndarray  # superior sagittal / transverse sinuses
    base_bone: np.ndarray  # skull-base bone inside the skull outline
    surface_csf: np.ndarray  # subarachnoid space over the convexity (between brain and table)
    brain_outline: np.ndarray  # everything inside the pia (brain incl. its sulci and ventricles)
    hu: np.ndarray  # ideal HU of the normal anatomy
    # pixel window around a head-frame point: window(x0, y0, radius_mm) -> slices or None
    window: Callable[[float, float, float], tuple[slice, slice] | None] | None = None


def brain_scale(t: float) -> float:
    return float(np.sqrt(max(0.05, 1.0 - ((t - 0.4) / 0.68) ** 2)))


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Angle difference folded into [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


# nominal head height (mm) that converts vertical wavelengths to units of t: the same for every
# grid, so a head's thick and thin series show the same folds
_T_MM = 120.0


class Waves:
    """A smooth random field over (x, y, t): a sum of waves a * cos(phase(x, y) + omega * t).

    The in-plane cosines and sines are computed once per head and grid, so a slice costs two
    multiply-adds per wave and the field is continuous across slices (thick and thin agree)."""

    def __init__(self, phases: list[np.ndarray], amps: np.ndarray, omegas: np.ndarray):
        n = len(phases)
        self.cs = np.empty((2 * n, *np.shape(phases[0])), dtype=np.float32)  # (2n, h, w)
        for i, ph in enumerate(phases):
            ph = np.asarray(ph, dtype=np.float32)
            np.cos(ph, out=self.cs[i])
            np.sin(ph, out=self.cs[n + i])
        self.amps = np.asarray(amps, dtype=np.float64)
        self.omegas = np.asarray(omegas, dtype=np.float64)

    @classmethod
    def blend(cls, a: np.ndarray, b: np.ndarray, omega: float) -> "Waves":
        """a cos(omega t) + b sin(omega t)."""
        out = cls.__new__(cls)
        out.cs = np.stack([a, -b]).astype(np.float32)
        out.amps, out.omegas = np.ones(1), np.array([omega])
        return out

    def at(self, t: float) -> np.ndarray:
        wt = self.omegas * t
        coef = np.concatenate([self.amps * np.cos(wt), -self.amps * np.sin(wt)])
        # one pass over the stack (a matrix-vector product)
        return np.einsum("i,ijk->jk", coef.astype(np.float32), self.cs)


def _plane_waves(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, n: int,
                 wavelength: tuple[float, float], z_wavelength: tuple[float, float],
                 amp: float, stretch: tuple[float, float] = (1.0, 1.0)) -> Waves:
    """Isotropic (or stretched along x / y) random plane waves in the head frame (mm)."""
    phases, omegas = [], []
    for _ in range(n):
        k = 2 * np.pi / rng.uniform(*wavelength)
        a = rng.uniform(0, 2 * np.pi)
        # python floats keep the arrays float32
        kx, ky = float(k * np.cos(a) * stretch[0]), float(k * np.sin(a) * stretch[1])
        phases.append(kx * X + ky * Y + float(rng.uniform(0, 2 * np.pi)))
        omegas.append(rng.choice([-1.0, 1.0]) * 2 * np.pi * _T_MM / rng.uniform(*z_wavelength))
    amps = rng.uniform(0.6, 1.0, n)
    return Waves(phases, amp * amps / np.sqrt(0.5 * np.sum(amps**2)), np.array(omegas))


class HeadRenderer:
    """Renders slices of one head on one in-plane grid (matrix, pixel size), at any heights:
    the thick and the thin series of an exam share one renderer.

    Everything that does not depend on the height (coordinates, outline at the widest
    level, textures) is computed once; small structures are computed in a window around
    them only."""

    def __init__(self, head: HeadParams, grid: Grid):
        self.head = head
        self.grid = grid
        n, p = grid.matrix, grid.pixel_mm
        self.n = n
        self.pixel = p
        coord = ((np.arange(n, dtype=np.float32) - (n - 1) / 2) * p).astype(np.float32)
        x = coord[None, :] - head.cx
        y = coord[:, None] - head.cy
        self._c, self._s = float(np.cos(head.yaw)), float(np.sin(head.yaw))
        X = (x * self._c + y * self._s).astype(np.float32)
        Y = (-x * self._s + y * self._c).astype(np.float32)
        r = np.hypot(X, Y).astype(np.float32)
        th = np.arctan2(Y, X).astype(np.float32)
        a_eff = head.A * (1.0 + head.egg * np.sin(th))
        base_r = a_eff * head.B / np.sqrt((head.B * np.cos(th)) ** 2 + (a_eff * np.sin(th)) ** 2)
        mod = 1.0 + sum(a * np.cos(k * th + ph) for k, a, ph in head.harmonics)
        R0 = (base_r * mod).astype(np.float32)  # outline at the widest level
        sa, ph = head.skull_var
        T0 = (head.skull_mm * (1.0 + sa * np.cos(th - ph))).astype(np.float32)
        # render only the head's bounding box (skull, scalp and face with a margin): the rest
        # of the field of view is air
        rows, cols = np.nonzero(r - R0 < 2.5 * T0 + head.scalp_mm + 16.0)
        self.crop = (slice(int(rows.min()), int(rows.max()) + 1),
                     slice(int(cols.min()), int(cols.max()) + 1))
        self.row0, self.col0 = int(rows.min()), int(cols.min())
        self.X, self.Y, self.r, self.theta = X[self.crop], Y[self.crop], r[self.crop], th[self.crop]
        self.R0, self.T0 = R0[self.crop], T0[self.crop]
        self.shape = self.X.shape
        th = self.theta
        # bony ridges of the skull base, as an angular profile (scaled per slice)
        g = np.zeros_like(th)
        for th0, amp, width in head.base_bumps:
            g += amp * np.exp(-0.5 * (wrap_angle(th - th0) / width) ** 2)
        self.bumps = (head.pv_bone * g).astype(np.float32)
        self.post = np.abs(wrap_angle(th - np.pi / 2)).astype(np.float32)  # angle from posterior
        # textures come from their own generator, seeded by the head: drawing them leaves the
        # exam's other random draws (scanner, mimics, lesions) as they were
        words = np.frombuffer(np.array([*head.sulci_phase, *head.skull_var, head.A],
                                       dtype=np.float64).tobytes(), dtype=np.uint32)
        self._seed = [int(w) for w in words]
        self._XW, self._YW = self.X, self.Y  # warped coordinates of the current slice
        rng = self._rng(0)
        # a smooth warp (mm) of the deep structures: no ruler-straight fissure, no perfect ellipse
        self.warp_x = _plane_waves(rng, self.X, self.Y, 3, (30.0, 70.0), (60.0, 160.0), 1.8)
        self.warp_y = _plane_waves(rng, self.X, self.Y, 3, (30.0, 70.0), (60.0, 160.0), 1.8)
        # convexity sulci: zero crossings of a random field of angular waves (m around the head)
        # whose phase also turns with depth (rho) and height, so sulci curve, branch and end;
        # older (atrophic) heads have fewer, wider sulci
        n_w = 7
        m = np.maximum(6, np.round(rng.uniform(15.0, 26.0, n_w) * (1.0 - 0.3 * head.atrophy)))
        k = rng.choice([-1.0, 1.0], n_w) * rng.uniform(5.0, 18.0, n_w)
        rho = self.r / self.R0
        phases = [float(mi) * th + float(ki) * rho + float(rng.uniform(0, 2 * np.pi))
                  for mi, ki in zip(m, k)]
        omegas = rng.choice([-1.0, 1.0], n_w) * 2 * np.pi * _T_MM / rng.uniform(25.0, 60.0, n_w)
        amps = rng.uniform(0.6, 1.0, n_w)
        self.sulc = Waves(phases, amps, omegas)
        # |F| / |grad F| ~ mm to the zero crossing: the RMS gradient, per pixel radius
        rr = np.maximum(self.r, 10.0)
        g2 = sum(0.5 * a * a * ((mi / rr) ** 2 + (ki / self.R0) ** 2)
                 for a, mi, ki in zip(amps, m, k))
        self.sulc_inv_g = (1.0 / np.sqrt(g2)).astype(np.float32)
        # sulcal depth varies slowly around the head
        phases = [float(mi) * th + float(rng.uniform(0, 2 * np.pi))
                  for mi in rng.integers(2, 7, 3)]
        self.sulc_depth = Waves(phases, np.full(3, 0.55),
                                2 * np.pi * _T_MM / rng.uniform(40.0, 100.0, 3))
        # medial (interhemispheric) sulci: mostly across the midline
        self.medial = _plane_waves(rng, self.X, self.Y, 5, (16.0, 26.0), (25.0, 60.0), 1.0,
                                   stretch=(0.8, 1.0))
        self.medial_inv_g = np.float32(1.0 / (2 * np.pi / 21.0 * 0.9))

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([*self._seed, stream])

    def _blobs(self, stream: int, sigma_mm: float) -> Waves:
        """Smoothed white noise (unit sd), two independent images blended along the height:
        random blobs without the lattice look of a few plane waves."""
        rng = self._rng(stream)
        sig = sigma_mm / self.pixel
        imgs = []
        for _ in range(2):
            z = ndimage.gaussian_filter(rng.standard_normal(self.shape, dtype=np.float32), sig)
            imgs.append(z / max(float(z.std()), 1e-6))
        return Waves.blend(imgs[0], imgs[1], 2 * np.pi * _T_MM / 40.0)

    @cached_property
    def rough(self) -> Waves:
        """Irregularity (unit sd, a few mm) of the skull-base edges."""
        return self._blobs(1, 3.0)

    @cached_property
    def cells_coarse(self) -> Waves:
        """Bone islands of the obliquely cut orbital roofs."""
        return self._blobs(4, 2.0)

    @cached_property
    def cells(self) -> Waves:
        """Air-cell texture (ethmoid, mastoid, frontal sinus): bubbles 2-4 mm."""
        return self._blobs(2, 1.0)

    @cached_property
    def folia(self) -> Waves:
        """Cerebellar folia: fine arcs around the fourth ventricle."""
        rng = self._rng(3)
        h = self.head
        phases = []
        for _ in range(2):
            yc = self.Y - h.B * rng.uniform(0.2, 0.4)
            xc = self.X - h.A * rng.uniform(-0.1, 0.1)
            rc, ac = np.hypot(xc, yc), np.arctan2(yc, xc)
            phases.append(2 * np.pi / rng.uniform(5.0, 7.0) * rc
                          + rng.uniform(1.5, 3.5) * np.cos(int(rng.integers(2, 5)) * ac
                                                           + rng.uniform(0, 2 * np.pi))
                          + rng.uniform(0, 2 * np.pi))
        return Waves(phases, np.ones(2), 2 * np.pi * _T_MM / rng.uniform(10.0, 20.0, 2))

    # -- windows for small structures --------------------------------------------------------
    def window(self, x0: float, y0: float, radius: float) -> tuple[slice, slice] | None:
        """Pixel window around a head-frame point (mm)."""
        h = self.head
        x = x0 * self._c - y0 * self._s + h.cx
        y = x0 * self._s + y0 * self._c + h.cy
        col = x / self.pixel + (self.n - 1) / 2 - self.col0
        row = y / self.pixel + (self.n - 1) / 2 - self.row0
        rp = radius / self.pixel + 2
        r0, r1 = max(0, int(row - rp)), min(self.shape[0], int(row + rp) + 2)
        c0, c1 = max(0, int(col - rp)), min(self.shape[1], int(col + rp) + 2)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def ellipse(self, x0: float, y0: float, a: float, b: float, angle: float = 0.0) -> np.ndarray:
        """Soft fraction of an ellipse (head frame, mm; in the slice's warped coordinates)."""
        out = np.zeros(self.shape, dtype=np.float32)
        w = self.window(x0, y0, max(a, b))
        if w is not None:
            out[w] = soft(ellipse_dist(self._XW[w], self._YW[w], x0, y0, a, b, angle), self.pixel)
        return out

    def segment(self, p0: tuple[float, float], p1: tuple[float, float], half_width) -> np.ndarray:
        """Soft fraction of a band around a segment (head frame, mm); half_width may vary."""
        out = np.zeros(self.shape, dtype=np.float32)
        cx, cy = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2
        w = self.window(cx, cy, 0.5 * float(np.hypot(p1[0] - p0[0], p1[1] - p0[1])) + 12.0)
        if w is not None:
            xw, yw = self._XW[w], self._YW[w]
            hw = half_width(xw, yw) if callable(half_width) else half_width
            out[w] = soft(segment_dist(xw, yw, p0, p1) - hw, self.pixel)
        return out

    # -- outline ---------------------------------------------------------------------------
    def _inner_table(self, t: float) -> np.ndarray:
        """Inner-table radius along theta; bony ridges bulge inwards at the skull base."""
        R = self.R0 * np.float32(brain_scale(t))
        if t < 0.3 and self.head.pv_bone > 0:
            R = R - np.float32((0.3 - t) / 0.3) * self.bumps
        return R

    def fields(self, t: float) -> SliceFields:
        h, p = self.head, self.pixel
        X, Y, r, th = self.X, self.Y, self.r, self.theta
        s = brain_scale(t)
        R = self._inner_table(t)
        d = (r - R).astype(np.float32)
        As, Bs = h.A * s, h.B * s
        # deep structures and the skull base are drawn in gently warped coordinates
        self._XW = X + self.warp_x.at(t)
        self._YW = Y + self.warp_y.at(t)
        XW, YW = self._XW, self._YW
        low = t < 0.3
        rough = self.rough.at(t) if low else None
        cells = self.cells.at(t) if t < 0.24 else None

        # the skull is cut obliquely near the vertex: a wider partial-volume edge there
        edge = p * (1.0 + 3.0 * h.pv_bone * max(0.0, t - 0.8) / 0.2)
        f_in = soft(d, edge)

        # skull-base bone inside the skull outline (petrous ridges, clivus, orbital roofs and
        # sphenoid wings); edges roughened, shapes tapered, nothing symmetric to the pixel
        base = np.zeros_like(d)
        if t < 0.28:
            k = 0.4 + 0.6 * (0.28 - t) / 0.28
            for sg in (-1.0, 1.0):
                # petrous pyramid: apex near the clivus, bent, widening to the mastoid
                a0 = (0.17 * sg * As, 0.0)
                a1 = (0.5 * sg * As, 0.13 * Bs)
                a2 = (0.82 * sg * As, 0.36 * Bs)
                w = self.window(0.5 * sg * As, 0.18 * Bs, 0.4 * As + 0.25 * Bs + 12.0)
                if w is None:
                    continue
                xw, yw = XW[w], YW[w]
                dist = np.minimum(segment_dist(xw, yw, a0, a1), segment_dist(xw, yw, a1, a2))
                lat = np.clip((np.abs(xw) - 0.17 * As) / (0.65 * As), 0, 1)
                half = (1.8 + 6.0 * lat ** 1.5) * k
                # edges rough in proportion to the thickness: the thin apex stays in one piece
                pet = soft(dist - half + 0.25 * half * rough[w], p) * (sg * xw > 0)
                np.maximum(base[w], pet, out=base[w])
            w = self.window(0.0, -0.05 * h.B, 16.0) if t < 0.2 else None
            if w is not None:  # clivus / sphenoid body: a wedge, broad in front, narrow behind
                xw, yw = XW[w], YW[w]
                cl = ellipse_dist(xw * (1.0 + 0.04 * (yw + 0.05 * h.B)), yw, 0.0, -0.05 * h.B,
                                  7.0, 11.0)
                np.maximum(base[w], soft(cl + 0.6 * rough[w], p), out=base[w])
        if t < 0.14:
            # anterior fossa floor behind the orbits, reaching back along the sphenoid ridges
            # (bird-wing outline): the temporal poles fill the middle fossae beside it
            u = np.abs(XW) / As
            ridge = -0.2 - 0.3 * u ** 1.6 - 0.03 * np.cos(7 * u + h.sulci_phase[1])
            wing = 2.0 + 1.5 * (0.14 - t) / 0.14  # the sphenoid ridge: a bony lip, mm
            floor = soft((YW / Bs - ridge) * Bs + rough * 1.5, p)
            lip = soft(np.abs((YW / Bs - ridge) * Bs + wing) - wing + 0.6 * rough, p)
            # the orbital roofs are cut obliquely: bone with islands of brain (gyral
            # impressions) in it, fewer towards the lowest slices
            patchy = soft(-0.5 - 0.6 * (0.14 - t) / 0.14 - self.cells_coarse.at(t), 0.8)
            np.maximum(base, np.maximum(floor * patchy, lip * (u < 0.85)), out=base)
        base *= f_in
        sinus_air = None  # sphenoid sinus and ethmoid cells inside the anterior skull base
        if t < 0.14:
            sph = soft(ellipse_dist(XW, YW, 0.0, -0.3 * Bs, 10.0, 7.0) + 1.5 * rough, p)
            sph *= soft(0.6 - np.abs(XW - 2.0 * rough - 1.5), p)  # an off-centre septum
            eth = (soft(np.abs(XW) - 0.15 * h.A + 2.5 * rough, p)
                   * soft(YW + 0.42 * Bs + 3.0 * rough, p)
                   * soft(-0.4 - cells, 0.3))
            sinus_air = np.maximum(sph, eth) * base
        intracranial = f_in * (1.0 - base)

        # CSF rim between the brain and the inner table widens with atrophy
        rim = 1.0 + 2.5 * h.atrophy
        brain_out = soft(d + rim, p) * (1.0 - base)
        below = -(d + rim)  # mm under the brain surface
        pw = max(p, 1.2)  # grey-white transition width

        # posterior fossa (behind the petrous ridges): cerebellum instead of cortex
        pf = None
        if t < 0.28:
            line = 0.36 * Bs * np.clip((np.abs(XW) - 0.17 * As) / (0.65 * As), 0, None)
            pf = soft(line + 0.05 * Bs - YW, 3.0) * float(np.clip((0.28 - t) / 0.04, 0, 1))

        # convexity sulci: the zero crossings of a random field, tapering with depth
        ds = np.abs(self.sulc.at(t)) * self.sulc_inv_g
        depth = 11.0 + 6.0 * self.sulc_depth.at(t) + 4.0 * h.atrophy
        half_w0 = max(0.45 + 0.9 * h.atrophy, 0.6 * p)
        half_w = half_w0 * (1.6 - 1.3 * np.clip(below / depth, 0.0, 1.0))  # funnel-shaped
        in_band = soft(below - depth, p)
        sulci = soft(ds - half_w, p) * in_band * brain_out
        gm_sulc = soft(ds - half_w - 2.5, pw) * soft(below - depth - 2.5, pw)
        if pf is not None:
            sulci *= 1.0 - pf
            gm_sulc *= 1.0 - pf

        # deep CSF spaces and ventricles
        vent = np.zeros_like(d)
        cist = np.zeros_like(d)
        vs = 1.0 + 1.0 * h.atrophy
        g = bump(t, 0.58, 0.17)
        if g > 0:
            gs = np.sqrt(g)
            for sg in (-1.0, 1.0):
                parts = [  # overlapping ellipses: one continuous lateral ventricle
                    (0.08 * sg, -0.2, 0.06 * vs, 0.2, 0.3 * sg),  # frontal horn
                    (0.11 * sg, 0.06, 0.05 * vs, 0.2, -0.1 * sg),  # body
                    (0.16 * sg, 0.24, 0.065 * vs, 0.12, -0.4 * sg),  # atrium
                ]
                for u0, v0, a, b, ang in parts:
                    part = self.ellipse(u0 * h.A, v0 * h.B, a * h.A * gs, b * h.B * gs, ang)
                    np.maximum(vent, part, out=vent)
                if 0.44 < t < 0.62:  # occipital horn
                    np.maximum(vent, self.ellipse(0.2 * sg * h.A, 0.38 * h.B, 0.035 * vs * h.A,
                                                  0.1 * h.B, 0.3 * sg), out=vent)
        if 0.34 < t < 0.5:  # third ventricle: a midline slit
            np.maximum(vent, self.ellipse(0.0, 0.02 * h.B, max(1.2 + 1.5 * h.atrophy, 0.6 * p),
                                          0.12 * h.B), out=vent)
        if 0.1 < t < 0.27:  # fourth ventricle
            np.maximum(vent, self.ellipse(0.0, 0.3 * h.B, 0.07 * h.A, 0.05 * h.B), out=vent)
        if 0.24 < t < 0.4:  # suprasellar and ambient cisterns around the midbrain
            sup = self.ellipse(0.0, -0.12 * h.B, 0.11 * h.A, 0.07 * h.B)
            ring = (self.ellipse(0.0, 0.1 * h.B, 0.18 * h.A, 0.16 * h.B)
                    * (1.0 - self.ellipse(0.0, 0.1 * h.B, 0.14 * h.A, 0.12 * h.B)))
            cist = np.maximum.reduce([cist, sup, ring])
        if 0.28 < t < 0.52:  # Sylvian fissures: opening laterally, with a posterior ramus
            wf = max(1.0 + 1.5 * h.atrophy, 0.6 * p)
            for sg in (-1.0, 1.0):
                a0, a1 = (0.4 * sg * h.A, -0.1 * h.B), (0.72 * sg * As, -0.02 * h.B)
                a2 = (1.05 * sg * As, -0.06 * h.B)
                def opening(xx, yy):  # noqa: E306
                    return wf * (0.6 + 0.8 * np.clip(np.abs(xx) / As, 0, 1))
                band = np.maximum(self.segment(a0, a1, opening), self.segment(a1, a2, opening))
                ramus = self.segment(a1, (0.9 * sg * As, 0.14 * h.B), 0.6 * wf)
                np.maximum(cist, np.maximum(band, ramus), out=cist)
        # interhemispheric fissure: in front of and behind the ventricles, full length above;
        # it follows the warp, so it undulates gently as a real falx does
        wf = max(0.8 + 1.2 * h.atrophy, 0.6 * p)
        vn = YW / Bs
        if t > 0.74:
            along = 1.0
        else:
            along = np.clip(soft(vn + 0.42, 2 * p / Bs) + soft(0.45 - vn, 2 * p / Bs), 0, 1)
            if t < 0.3:
                along = along * (vn < -0.3)  # posterior fossa: no fissure behind the brainstem
        absx = np.abs(XW)
        fissure = soft(absx - wf, p) * along
        np.maximum(cist, fissure, out=cist)
        cist *= brain_out
        vent *= brain_out
        # medial sulci branch off the fissure
        dm = absx - wf
        if not (np.isscalar(along) or np.any(along)):
            med = np.zeros_like(d)
            gm_med = med
        else:
            dsm = np.abs(self.medial.at(t)) * self.medial_inv_g
            mdepth = np.clip(5.0 + 6.0 * self.sulc_depth.at(t + 0.3), 0.5, None)
            med = (soft(dsm - half_w0 * (1.25 - np.clip(dm / mdepth, 0, 1)), p)
                   * soft(dm - mdepth, p) * along * brain_out)
            gm_med = (soft(dsm - half_w0 - 2.5, pw) * soft(dm - mdepth - 2.5, pw)
                      + soft(dm - 2.5, pw)) * along
        np.maximum(sulci, med, out=sulci)

        # cerebellar folia: thin, dense arcs
        if pf is not None and pf.any():
            fol = np.abs(self.folia.at(t)) * np.float32(6.0 / (2 * np.pi))
            # broken into short arcs, as folia cut obliquely are
            folia = (soft(fol - 0.35 - 0.4 * h.atrophy, p) * pf * soft(below - 18.0, p)
                     * soft(-0.2 - self.rough.at(t + 0.5), 1.0))
            np.maximum(sulci, 0.8 * folia * brain_out, out=sulci)

        falx = soft(absx - 0.5 * max(0.6, 0.7 * p), p) * along * soft(d + 0.5, p) * (1 - base)
        if t <= 0.74:
            falx *= np.clip((np.abs(vn) - 0.25) / 0.15, 0, 1)
        # superior sagittal sinus on the midline at the inner table; transverse sinuses low
        sinus = soft((np.hypot(XW / 4.5, (d + 3.0) / 3.0) - 1.0) * 3.0, p) * (np.abs(vn) > 0.6)
        if t < 0.3:
            band = soft(np.abs(d + 2.5) - 2.5, p) * ((self.post > 0.35) & (self.post < 1.1))
            np.maximum(sinus, band, out=sinus)
        sinus *= f_in

        csf_all = np.maximum.reduce([sulci, vent, cist])
        brain = np.clip(brain_out - csf_all, 0.0, 1.0)

        # ---- paint the normal anatomy --------------------------------------------------------
        hu = np.full(d.shape, -1000.0, dtype=np.float32)
        T = self.T0 * np.float32(1.0 + 1.5 * max(0.0, 0.18 - t) / 0.18)
        # every head has a skull; atlantis removes it after reconstruction
        Tm = float(T.mean())
        scalp_w = h.scalp_mm * (0.6 if t > 0.85 else 1.0)
        paint(hu, soft(d - T - scalp_w, p), h.scalp)
        if t < 0.14:  # face: soft tissue in front of the skull base
            face = ellipse_dist(XW, YW, 0.0, -(Bs + 14.0), 0.75 * h.A, 26.0)
            paint(hu, soft(face + 2.0 * rough, p), h.scalp)
        fat = soft(np.abs(d - T - 0.55 * scalp_w) - 0.2 * scalp_w, p)
        paint(hu, 0.5 * fat, -90.0)
        q = np.clip(d / T, 0.0, 1.0)
        bone = h.diploe + (h.table - h.diploe) * np.abs(2 * q - 1) ** 0.7
        f_bone = soft(d - T, p)
        paint(hu, f_bone, bone)
        if t < 0.22:  # frontal sinus and mastoid air cells inside the bone
            front = ellipse_dist(XW, YW, 0.0, -(Bs + 0.5 * Tm), 10.0, 0.35 * Tm + 1)
            air = soft(front + 0.8 * rough, p) * soft(0.45 - np.abs(XW - 1.5 * rough), p)
            in_mastoid = np.clip(1.0 - np.abs(self.post - 1.08) / 0.16, 0, 1)
            mast = (soft(np.abs(d - 0.5 * T) - 0.45 * T, p) * in_mastoid
                    * soft(0.3 - cells, 0.3))
            paint(hu, np.maximum(air, mast) * f_bone, -950.0)
        if t < 0.12:  # orbits in front of the skull base: fat cones around the globes
            for sg in (-1.0, 1.0):
                ox = sg * 0.45 * h.A
                w = self.window(ox + 0.1 * sg * h.A, -(Bs + Tm + 8.0), 0.2 * h.A + 22.0)
                if w is None:
                    continue
                xw, yw, hw = XW[w], YW[w], hu[w]
                orb = ellipse_dist(xw, yw, ox, -(Bs + Tm + 6.0), 13.0, 15.0, -0.35 * sg)
                paint(hw, soft(orb + 1.5 * rough[w], p), -80.0)
                paint(hw, self.ellipse(ox, -(Bs + Tm + 13.0), 11.0, 10.5)[w], 12.0)
                # the lateral orbital wall
                wall = segment_dist(xw, yw, (sg * 0.7 * h.A, -(Bs + Tm - 2.0)),
                                    (sg * 0.78 * h.A, -(Bs + Tm + 18.0)))
                paint(hw, soft(wall - 1.8 + 0.5 * rough[w], p) * soft(face[w], p),
                      0.8 * h.base_bone)
        paint(hu, base, h.base_bone)
        if sinus_air is not None:
            paint(hu, sinus_air, -950.0)
        paint(hu, intracranial, h.csf)
        paint(hu, brain_out, h.gm)
        cortex = 2.5 + 0.5 * (1 - h.atrophy)
        wm = (soft(d + rim + cortex, pw) * (1.0 - gm_sulc) * np.clip(1.0 - gm_med, 0, 1)
              * brain_out)
        if pf is not None:
            wm *= 1.0 - 0.7 * pf  # cerebellum: mostly grey on CT
        paint(hu, wm, h.wm)
        if 0.36 < t < 0.56:  # basal ganglia and thalami
            for sg in (-1.0, 1.0):
                deep = np.maximum(
                    self.ellipse(sg * 0.22 * h.A, -0.04 * h.B, 0.09 * h.A, 0.15 * h.B, 0.3 * sg),
                    self.ellipse(sg * 0.09 * h.A, 0.12 * h.B, 0.07 * h.A, 0.09 * h.B))
                paint(hu, deep * brain_out, h.deep)
        if t < 0.36:  # brainstem
            bs = self.ellipse(0.0, 0.1 * h.B, 0.13 * h.A, 0.11 * h.B)
            paint(hu, bs * brain_out, 0.5 * (h.gm + h.wm))
        paint(hu, csf_all, h.csf)

        return SliceFields(
            t=t, s=s, X=X, Y=Y, r=r, theta=th, d=d, R=R,
            intracranial=intracranial, brain=brain.astype(np.float32),
            sulci=sulci.astype(np.float32), ventricles=vent, cisterns=cist,
            falx=falx.astype(np.float32), sinus=sinus.astype(np.float32), base_bone=base,
            surface_csf=np.clip(intracranial - brain_out, 0.0, 1.0),
            brain_outline=brain_out, hu=hu, window=self.window,
        )
