"""Hemorrhages with their real shapes and places, drawn as parameters and rendered per slice.

- EDH: biconvex lens against the inner table (thick centre, short extent).
- SDH: crescent along the inner table (thin, long, tapering ends).
- SAH: blood in sulci over the convexity, or in the basal cisterns / Sylvian and
  interhemispheric fissures.
- IPH: irregular blob in the parenchyma (deep, lobar, cerebellar) or small
  cortical contusions near the skull base, with a rim of edema (not labeled).
- IVH: blood layering in the dependent (posterior) ventricles, or a cast.

A lesion is a fraction map per slice (partial volume at its edge); the label
mask is where the fraction is >= 0.5. Blood is 50-90 HU (acute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ictview.core.labels import BY_CODE
from ictview.synth.anatomy import Grid, HeadParams, SliceFields, soft, wrap_angle

# painting order: later ones win where lesions overlap
ORDER = ("SAH", "SDH", "EDH", "IVH", "IPH")


@dataclass(frozen=True)
class Lesion:
    kind: str  # EDH SDH SAH IPH IVH
    hu: float  # blood density
    t0: float  # vertical centre (head height units)
    half_t: float  # vertical half extent (head height units)
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> int:
        return BY_CODE[self.kind].value




def _half_t(mm: float, grid: Grid, min_slices: float = 1.2) -> float:
    """Vertical half extent in t: physical size, but always spanning a few thick slices."""
    dt = grid.thickness_mm / grid.mm_per_t
    return max(mm / grid.mm_per_t, min_slices * dt)


def _side(rng: np.random.Generator) -> float:
    return 0.0 if rng.random() < 0.5 else np.pi  # theta 0: patient left, pi: right


def draw_lesion(kind: str, rng: np.random.Generator, head: HeadParams, grid: Grid,
                size: float = 1.0) -> Lesion:
    """size < 1 draws a subtle lesion (the ones readers miss)."""
    if kind == "EDH":
        lo = max(4.0, 3.0 * grid.pixel_mm)
        h = float(np.exp(rng.uniform(np.log(lo), np.log(max(1.2 * lo, 20.0 * size)))))
        return Lesion(kind, float(rng.uniform(62.0, 85.0)), float(rng.uniform(0.35, 0.75)),
                      _half_t(size * rng.uniform(12.0, 30.0), grid),
                      {"theta": float(_side(rng) + rng.normal(0, 0.45)),
                       "width": float(rng.uniform(0.25, 0.5)), "thick": h})
    if kind == "SDH":
        # thinner than ~2.5 pixels an SDH is all partial volume: keep it visible on any grid
        lo = max(2.5, 2.5 * grid.pixel_mm)
        h = float(np.exp(rng.uniform(np.log(lo), np.log(max(1.2 * lo, 14.0 * size)))))
        return Lesion(kind, float(rng.uniform(55.0, 80.0)), float(rng.uniform(0.4, 0.75)),
                      _half_t(size * rng.uniform(25.0, 60.0), grid, 1.5),
                      {"theta": float(_side(rng) + rng.normal(0, 0.5)),
                       "width": float(rng.uniform(0.5, 1.3)), "thick": h})
    if kind == "SAH":
        variant = str(rng.choice(["convexity", "basal", "fissure"], p=[0.5, 0.35, 0.15]))
        hu = float(rng.uniform(55.0, 75.0))
        if variant == "convexity":
            return Lesion(kind, hu, float(rng.uniform(0.45, 0.85)),
                          _half_t(size * rng.uniform(10.0, 30.0), grid),
                          {"variant": variant, "theta": float(rng.uniform(-np.pi, np.pi)),
                           "width": float(size * rng.uniform(0.25, 0.7))})
        if variant == "basal":
            return Lesion(kind, hu, float(rng.uniform(0.3, 0.42)),
                          _half_t(size * rng.uniform(10.0, 22.0), grid),
                          {"variant": variant, "side": float(rng.uniform(-1.0, 1.0))})
        return Lesion(kind, hu, float(rng.uniform(0.6, 0.85)),
                      _half_t(size * rng.uniform(10.0, 25.0), grid),
                      {"variant": variant, "front": bool(rng.random() < 0.5)})
    if kind == "IPH":
        variant = str(rng.choice(["deep", "lobar", "contusion", "cerebellar"],
                                 p=[0.3, 0.3, 0.3, 0.1]))
        sg = 1.0 if rng.random() < 0.5 else -1.0
        if variant == "deep":
            x, y = sg * rng.uniform(0.08, 0.25), rng.uniform(-0.05, 0.14)
            t0 = rng.uniform(0.4, 0.52)
            rad = np.exp(rng.uniform(np.log(4.0), np.log(20.0)))
        elif variant == "lobar":
            ang = rng.uniform(-np.pi, np.pi)
            rr = rng.uniform(0.45, 0.7)
            x, y, t0 = rr * np.cos(ang), rr * np.sin(ang), rng.uniform(0.45, 0.8)
            rad = np.exp(rng.uniform(np.log(3.0), np.log(18.0)))
        elif variant == "contusion":
            # frontal base or temporal pole, next to the bony ridges that cause them
            if rng.random() < 0.6:  # frontal base
                ang = -np.pi / 2 + rng.normal(0, 0.35)
            else:  # temporal pole: antero-lateral (anterior is theta = -pi/2)
                ang = -0.6 if rng.random() < 0.5 else np.pi + 0.6
            rr = rng.uniform(0.72, 0.85)
            x, y, t0 = rr * np.cos(ang), rr * np.sin(ang), rng.uniform(0.22, 0.4)
            rad = np.exp(rng.uniform(np.log(2.0), np.log(7.0)))
        else:
            x, y, t0 = sg * rng.uniform(0.2, 0.4), rng.uniform(0.45, 0.65), rng.uniform(0.1, 0.24)
            rad = np.exp(rng.uniform(np.log(4.0), np.log(14.0)))
        rad = max(2.0, rad * size)
        n_blobs = int(rng.integers(2, 5)) if variant == "contusion" else 1
        blobs = []
        for i in range(n_blobs):
            jitter = (rng.normal(0, 0.05), rng.normal(0, 0.05)) if i else (0.0, 0.0)
            blobs.append((float(x + jitter[0]), float(y + jitter[1]),
                          float(rad * (rng.uniform(0.5, 1.0) if i else 1.0))))
        harm = tuple((k, float(rng.normal(0, 0.12)), float(rng.uniform(0, 2 * np.pi)))
                     for k in (2, 3, 5))
        return Lesion(kind, float(rng.uniform(62.0, 88.0)), float(t0), _half_t(rad, grid, 1.0),
                      {"variant": variant, "blobs": tuple(blobs), "harm": harm,
                       "edema": float(rng.uniform(0.2, 0.6))})
    if kind == "IVH":
        variant = "layer" if rng.random() < 0.65 else "cast"
        return Lesion(kind, float(rng.uniform(55.0, 75.0)), float(rng.uniform(0.52, 0.6)),
                      _half_t(size * rng.uniform(12.0, 30.0), grid, 1.5),
                      {"variant": variant, "level": float(0.32 - size * rng.uniform(0.04, 0.27)),
                       "side": float(rng.choice([-1.0, 0.0, 1.0]))})
    raise ValueError(f"unknown lesion kind {kind}")


def render(lesion: Lesion, f: SliceFields, head: HeadParams, pixel_mm: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(fraction, blood HU, labeled fraction) of the lesion in this slice, or None when it is
    not in it. The labeled fraction leaves out blood too thin to be seen (under a pixel)."""
    b = (f.t - lesion.t0) / lesion.half_t
    if abs(b) >= 1.0:
        return None
    p = pixel_mm
    q = lesion.params
    hu: np.ndarray | float = lesion.hu
    if lesion.kind in ("EDH", "SDH"):
        a = wrap_angle(f.theta - q["theta"]) / q["width"]
        if lesion.kind == "EDH":  # lens: thickest in the middle in every direction
            thick = q["thick"] * np.sqrt(np.clip(1.0 - a * a - b * b, 0.0, None))
        else:  # crescent: nearly constant thickness, tapering at the ends
            thick = q["thick"] * np.clip(1.0 - a**4, 0.0, None) ** 0.6 * np.sqrt(1.0 - b * b)
        frac = soft(-(f.d + thick), p) * f.intracranial * (thick > 0.3 * p)
        seen = frac * (thick >= 0.8 * p)
    elif lesion.kind == "SAH":
        v = q["variant"]
        if v == "convexity":
            a = wrap_angle(f.theta - q["theta"]) / q["width"]
            gate = np.clip(1.5 * (1.0 - a * a - b * b), 0.0, 1.0)
            frac = np.maximum(f.sulci, 0.7 * f.surface_csf) * gate
        elif v == "basal":
            # cisterns and Sylvian fissures, heavier on one side
            side = q["side"]
            weight = np.clip(1.0 + 0.8 * side * np.tanh(f.X / 20.0), 0.0, 1.0)
            frac = f.cisterns * weight * (np.abs(f.X) < 0.8 * head.A) * min(1.0, 1.5 * (1 - b * b))
        else:
            half = (f.Y < 0) if q["front"] else (f.Y > 0)
            frac = f.cisterns * (np.abs(f.X) < 6.0) * half * min(1.0, 1.5 * (1 - b * b))
    elif lesion.kind == "IPH":
        frac = np.zeros_like(f.d)
        edema = np.zeros_like(f.d)
        core = np.zeros_like(f.d)
        zscale = np.sqrt(1.0 - b * b)
        amp = sum(abs(c) for _, c, _ in q["harm"])
        for x, y, rad in q["blobs"]:
            w = f.window(x * head.A, y * head.B, rad * (1 + amp) * (1.0 + q["edema"]) + 3.0)
            if w is None:
                continue
            dx = f.X[w] - x * head.A
            dy = f.Y[w] - y * head.B
            dist = np.hypot(dx, dy)
            ang = np.arctan2(dy, dx)
            shape = 1.0 + sum(c * np.cos(k * ang + ph + 3 * b) for k, c, ph in q["harm"])
            r_eff = rad * zscale * shape
            np.maximum(frac[w], soft(dist - r_eff, p), out=frac[w])
            np.maximum(edema[w], soft(dist - r_eff * (1.0 + q["edema"]) - 1.5, p), out=edema[w])
            np.maximum(core[w], np.clip(1.0 - dist / np.maximum(r_eff, 1e-3), 0, 1), out=core[w])
        frac *= f.intracranial * (1.0 - f.ventricles)
        hu = lesion.hu - 8.0 + 12.0 * core  # denser centre (retracting clot)
        # edema: hypodense rim, part of the anatomy (not labeled)
        f.hu += np.clip(edema - frac, 0, 1) * f.brain * np.float32(-7.0)
    elif lesion.kind == "IVH":
        if q["variant"] == "layer":
            frac = f.ventricles * soft(q["level"] * head.B - f.Y, p)
        else:
            side = q["side"]
            gate = 1.0 if side == 0 else soft(-side * f.X, 4.0)
            frac = f.ventricles * gate
    else:
        raise ValueError(lesion.kind)
    frac = np.asarray(frac, dtype=np.float32)
    if not frac.any():
        return None
    if lesion.kind not in ("EDH", "SDH"):
        seen = frac
    return frac, np.asarray(hu, dtype=np.float32), seen


def paint_lesions(f: SliceFields, lesions: list[Lesion], head: HeadParams, pixel_mm: float,
                  labels: np.ndarray | None) -> None:
    """Paints the lesions into f.hu; writes their labels (fraction >= 0.5) into `labels`."""
    for kind in ORDER:
        for les in lesions:
            if les.kind != kind:
                continue
            out = render(les, f, head, pixel_mm)
            if out is None:
                continue
            frac, hu, seen = out
            f.hu += frac * (hu - f.hu)
            if labels is not None:
                labels[seen >= 0.5] = les.label
