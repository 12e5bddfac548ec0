"""The scanner: reconstruction kernel, correlated noise, calibration offset, field of view.

Sites differ here most: noise level and texture (grain size, low-frequency
blotches), kernel sharpness (blur or edge-enhancing overshoot), HU offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from ictview.synth.sites import SiteProfile


@dataclass(frozen=True)
class ScanParams:
    noise_hu: float
    grain_mm: float
    blotch: float
    blur_mm: float
    sharpen: float
    hu_offset: float


def draw_scan(rng: np.random.Generator, site: SiteProfile) -> ScanParams:
    return ScanParams(
        noise_hu=float(rng.uniform(*site.noise_hu)),
        grain_mm=float(rng.uniform(*site.grain_mm)),
        blotch=float(rng.uniform(*site.blotch)),
        blur_mm=float(rng.uniform(*site.blur_mm)),
        sharpen=float(rng.uniform(*site.sharpen)),
        hu_offset=float(rng.uniform(*site.hu_offset)),
    )


def reconstruct(ideal: np.ndarray, t: tuple[float, ...], scan: ScanParams, pixel_mm: float,
                thickness_mm: float, rng: np.random.Generator) -> np.ndarray:
    """ideal (z, y, x) float32 HU -> reconstructed float32 HU (kernel, noise, offset).

    Done in the frequency domain, one slice spectrum at a time: the kernel is an MTF
    (Gaussian blur times an edge-enhancing boost), and the noise is white noise shaped by
    a CT-like noise power spectrum (ramp at low frequencies, rolled off by the grain size)
    plus an optional low-frequency "blotch" component."""
    nz, ny, nx = ideal.shape
    pad = 8  # the FFT wraps around: pad with the edge values (air) before filtering
    sy = fft.next_fast_len(ny + 2 * pad, real=True)
    sx = fft.next_fast_len(nx + 2 * pad, real=True)
    buf = np.pad(ideal, ((0, 0), (pad, sy - ny - pad), (pad, sx - nx - pad)), mode="edge")
    fy = fft.fftfreq(sy, d=pixel_mm).astype(np.float32)[:, None]
    fx = fft.rfftfreq(sx, d=pixel_mm).astype(np.float32)[None, :]
    f2 = fx * fx + fy * fy
    two_pi2 = np.float32(2 * np.pi**2)
    mtf = np.exp(-two_pi2 * scan.blur_mm**2 * f2)
    if scan.sharpen > 0:  # unsharp mask: overshoot next to bone, as sharp head kernels do
        wide = 2 * scan.blur_mm + 0.3
        mtf = mtf * (1 + np.float32(scan.sharpen) * (1 - np.exp(-two_pi2 * wide**2 * f2)))
    f = np.sqrt(f2)
    fine = np.sqrt(f / f.max()) * np.exp(-two_pi2 * scan.grain_mm**2 * f2)
    fine /= np.sqrt(np.mean(fine**2))
    nps = np.float32(np.sqrt(1 - scan.blotch)) * fine
    if scan.blotch > 0:
        low = np.exp(-two_pi2 * 3.0**2 * f2)
        low /= np.sqrt(np.mean(low**2))
        nps = nps + np.float32(np.sqrt(scan.blotch)) * low
    nps = nps.astype(np.complex64)
    # noise sd: thinner slices get fewer photons; the posterior fossa more bone in the beam
    sd = scan.noise_hu * min(3.0, np.sqrt(5.0 / thickness_mm))
    per_slice = [1.0 + 0.6 * max(0.0, 0.3 - tk) / 0.3 for tk in t]
    # unit-variance scale of the shaped noise, measured once on a sample slice
    probe = _white_spectrum(rng, (sy, sx // 2 + 1))
    norm = np.float32(1.0 / max(float(fft.irfft2(probe * nps, s=(sy, sx)).std()), 1e-9))
    out = np.empty_like(ideal)
    for k in range(nz):
        spec = fft.rfft2(buf[k]) * mtf
        spec += _white_spectrum(rng, spec.shape) * nps * np.float32(norm * sd * per_slice[k])
        out[k] = fft.irfft2(spec, s=(sy, sx))[pad:pad + ny, pad:pad + nx]
    out += np.float32(scan.hu_offset)
    return out


def _white_spectrum(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    z = rng.standard_normal((2, *shape), dtype=np.float32)
    return (z[0] + 1j * z[1]).astype(np.complex64)


def reconstruct_fov(ideal_crop: np.ndarray, crop: tuple[slice, slice], matrix: int,
                    t: tuple[float, ...], scan: ScanParams, pixel_mm: float, thickness_mm: float,
                    rng: np.random.Generator) -> np.ndarray:
    """The full matrix: the head's box reconstructed, the air around it only noisy."""
    inner = reconstruct(ideal_crop, t, scan, pixel_mm, thickness_mm, rng)
    nz = ideal_crop.shape[0]
    sd = scan.noise_hu * min(3.0, np.sqrt(5.0 / thickness_mm))
    out = rng.standard_normal((nz, matrix, matrix), dtype=np.float32)
    out *= np.float32(sd)
    out += np.float32(-1000.0 + scan.hu_offset)
    out[:, crop[0], crop[1]] = inner
    return out


def fov_mask(matrix: int) -> np.ndarray:
    """The reconstruction circle: outside it a scanner writes air or padding."""
    c = (matrix - 1) / 2
    yy, xx = np.ogrid[:matrix, :matrix]
    return (yy - c) ** 2 + (xx - c) ** 2 <= (matrix / 2) ** 2
