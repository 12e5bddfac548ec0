"""Hemorrhage mimics: what makes a model trained at one site fire on normal scans elsewhere.

- dense falx and venous sinuses (blood-like 55-70 HU at kaggle / cq500, paler at atlantis);
- physiological calcifications (pineal, choroid plexus, basal ganglia, falx plaques),
  100-400 HU, small enough to be partial-volumed into blood densities on 5 mm slices;
- beam-hardening streaks near the skull base (bright and dark bands through the
  posterior fossa, the dark "Hounsfield bar" between the petrous bones);
- partial-volume bone at the brain edge (skull-base ridges and the obliquely cut
  vertex: see HeadParams.pv_bone, rendered by the anatomy).
None of them is labeled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ictview.synth.anatomy import Grid, HeadParams, SliceFields, paint, soft
from ictview.synth.sites import SiteProfile


@dataclass(frozen=True)
class Calcification:
    kind: str  # pineal, choroid, basal_ganglia, falx
    x: float  # head frame, relative to A / B
    y: float
    t0: float
    radius_mm: float
    hu: float


@dataclass(frozen=True)
class Streak:
    x: float  # a point on the streak (head frame, relative to A / B)
    y: float
    angle: float
    amp: float  # HU, signed
    width_mm: float


@dataclass(frozen=True)
class MimicParams:
    falx_hu: float
    sinus_hu: float
    calcs: tuple[Calcification, ...]
    streaks: tuple[Streak, ...]
    bar_hu: float  # dark band between the petrous bones (negative)

    @property
    def score(self) -> float:
        """0..1: how much a reader is tempted to over-call this exam (for readers.py)."""
        dense = np.clip((max(self.falx_hu, self.sinus_hu) - 50.0) / 20.0, 0, 1)
        calc = min(1.0, sum(c.hu * c.radius_mm for c in self.calcs) / 1500.0)
        streak = min(1.0, sum(abs(s.amp) for s in self.streaks) / 150.0)
        return float(np.clip(0.4 * dense + 0.35 * calc + 0.25 * streak, 0, 1))


def draw_mimics(rng: np.random.Generator, site: SiteProfile, head: HeadParams) -> MimicParams:
    calcs: list[Calcification] = []
    lo, hi = site.calc_hu
    if rng.random() < site.p_pineal_calc:
        calcs.append(Calcification("pineal", 0.0, float(rng.uniform(0.18, 0.24)),
                                   float(rng.uniform(0.44, 0.5)), float(rng.uniform(1.5, 3.5)),
                                   float(rng.uniform(lo, hi))))
    if rng.random() < site.p_choroid_calc:
        for sg in (-1.0, 1.0):
            if rng.random() < 0.85:
                calcs.append(Calcification(
                    "choroid", sg * float(rng.uniform(0.14, 0.19)), float(rng.uniform(0.22, 0.28)),
                    float(rng.uniform(0.53, 0.6)), float(rng.uniform(1.5, 4.0)),
                    float(rng.uniform(lo, hi))))
    if rng.random() < site.p_other_calc:
        if rng.random() < 0.5:
            for sg in (-1.0, 1.0):
                calcs.append(Calcification(
                    "basal_ganglia", sg * 0.22, -0.02, float(rng.uniform(0.42, 0.5)),
                    float(rng.uniform(1.0, 2.5)), float(rng.uniform(lo, 0.7 * hi))))
        else:
            calcs.append(Calcification(
                "falx", 0.0, float(rng.choice([-1, 1]) * rng.uniform(0.45, 0.8)),
                float(rng.uniform(0.6, 0.85)), float(rng.uniform(1.5, 3.0)),
                float(rng.uniform(lo, hi))))
    amp_lo, amp_hi = site.streak_hu
    streaks = []
    for _ in range(int(rng.integers(2, 6))):
        sg = rng.choice([-1.0, 1.0])
        streaks.append(Streak(float(sg * rng.uniform(0.3, 0.6)), float(rng.uniform(0.05, 0.3)),
                              float(rng.uniform(0, np.pi)),
                              float(rng.choice([-1.0, 1.0]) * rng.uniform(amp_lo, amp_hi)),
                              float(rng.uniform(1.0, 3.0))))
    return MimicParams(
        falx_hu=float(rng.uniform(*site.falx_hu)), sinus_hu=float(rng.uniform(*site.sinus_hu)),
        calcs=tuple(calcs), streaks=tuple(streaks),
        bar_hu=-float(rng.uniform(amp_lo, amp_hi)),
    )


def paint_dura(f: SliceFields, m: MimicParams) -> None:
    paint(f.hu, f.falx, m.falx_hu)
    paint(f.hu, f.sinus, m.sinus_hu)


def paint_calcifications(f: SliceFields, m: MimicParams, head: HeadParams, grid: Grid) -> None:
    """Spheres averaged over the slab: small ones lose density on thick slices (partial volume)."""
    p = grid.pixel_mm
    for c in m.calcs:
        dz = (f.t - c.t0) * grid.mm_per_t
        if abs(dz) > c.radius_mm + grid.thickness_mm / 2:
            continue
        dist = np.hypot(f.X - c.x * head.A, f.Y - c.y * head.B)
        frac = np.zeros_like(f.d)
        zs = dz + np.linspace(-0.4, 0.4, 5) * grid.thickness_mm
        for z in zs:
            if abs(z) < c.radius_mm:
                frac += soft(dist - np.sqrt(c.radius_mm**2 - z * z), p)
        frac /= len(zs)
        paint(f.hu, frac * f.intracranial, c.hu)


def streak_field(f: SliceFields, m: MimicParams, head: HeadParams) -> np.ndarray | None:
    """Additive beam-hardening pattern of this slice (HU), strongest at the skull base."""
    if f.t >= 0.34:
        return None
    w = (0.34 - f.t) / 0.34
    out = np.zeros_like(f.d)
    # the dark band between the petrous bones, across the posterior fossa
    bar_y = 0.15 * head.B
    out += m.bar_hu * w * np.exp(-0.5 * ((f.Y - bar_y) / 5.0) ** 2) * (np.abs(f.X) < 0.6 * head.A)
    for s in m.streaks:
        x0, y0 = s.x * head.A, s.y * head.B
        c, sn = np.cos(s.angle), np.sin(s.angle)
        across = -(f.X - x0) * sn + (f.Y - y0) * c
        along = (f.X - x0) * c + (f.Y - y0) * sn
        out += (s.amp * w * np.exp(-0.5 * (across / s.width_mm) ** 2)
                * np.exp(-np.abs(along) / 60.0))
    # inside the skull only (the streaks cross bone too, but matter in the brain)
    return out * np.clip(f.intracranial + f.base_bone, 0, 1)
