"""Pixel data -> HU, one slice at a time, straight into a preallocated int16 volume.

Uncompressed little-endian 16-bit pixels are read with one `readinto` at the
offset the header parser found (verified again here); everything else (JPEG
lossless, JPEG 2000, JPEG-LS, RLE, big endian, 8/32-bit) is decoded by pydicom
and its plugins. The HU conversion then runs in place on the slice while it is
still in cache, in int16 whenever the value range allows it.
"""

from __future__ import annotations

import math
import struct
import sys
import warnings

import numpy as np
import pydicom

from ictview.io.dicom_header import PIXEL_DATA, FileHeader, Skip, exception_line

AIR_HU = -1024
_LITTLE = sys.byteorder == "little"


def read_slice_into(out: np.ndarray, h: FileHeader) -> int:
    """Fill `out` (int16, rows x cols) with the slice's HU. Raises Skip(reason) on failure.

    Returns how many voxels (padding aside) were clipped to the int16 range: the caller
    decides whether that is a warning or a wrong rescale (dicom_plausible)."""
    if h.pixels is not None and _LITTLE and _read_raw(out, h):
        return stored_to_hu_inplace(out, h)
    arr = _decode_with_pydicom(h)
    if arr.shape != out.shape:
        raise Skip(f"decoded pixels are {arr.shape}, header says {out.shape}")
    if arr.dtype.itemsize <= 2 and arr.dtype.kind in "iu":
        if h.pixel_representation == 0:
            out.view(np.uint16)[...] = arr.astype(np.uint16, copy=False)
        else:
            out[...] = arr.astype(np.int16, copy=False)
        return stored_to_hu_inplace(out, h)
    pad = _padding_mask(arr, h)
    out[...], clipped = _rescaled(arr, h, pad)
    if pad is not None:
        out[pad] = AIR_HU
    return clipped


def _read_raw(out: np.ndarray, h: FileHeader) -> bool:
    """Read uncompressed pixels at the recorded offset; False when anything looks off."""
    loc = h.pixels
    assert loc is not None
    nbytes = out.size * 2
    if loc.length is None or loc.length < nbytes:
        return False
    try:
        with open(h.path, "rb", buffering=0) as fp:
            # re-check the element header: the file may have changed since the scan
            fp.seek(loc.tag_offset)
            head = fp.read(loc.value_offset - loc.tag_offset)
            if len(head) < 8 or struct.unpack_from("<HH", head) != (PIXEL_DATA >> 16, PIXEL_DATA & 0xFFFF):
                return False
            view = memoryview(out.reshape(-1).view(np.uint8))
            got = fp.readinto(view)
            while got < nbytes:  # readinto may return short counts on some file systems
                more = fp.readinto(view[got:])
                if not more:
                    return False
                got += more
    except OSError:
        return False
    return True


def _decode_with_pydicom(h: FileHeader) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(h.path, force=True)
            arr = ds.pixel_array
        except Exception as exc:  # decoders raise many kinds for damaged or unsupported data
            raise Skip(f"cannot decode pixel data ({h.transfer_syntax}): {exception_line(exc)}") from None
    if arr.ndim != 2:
        raise Skip(f"decoded pixels have shape {arr.shape}, expected one 2D frame")
    return arr


def stored_to_hu_inplace(s: np.ndarray, h: FileHeader) -> int:
    """`s` holds the raw 16 stored bits (int16 buffer); convert to HU in place.
    Returns the number of voxels clipped to int16 (padding aside)."""
    bs = h.bits_stored
    u = s.view(np.uint16)
    if h.pixel_representation == 0:
        if bs < 16:
            np.bitwise_and(u, (1 << bs) - 1, out=u)  # bits above HighBit may hold overlays
        lo, hi = 0, (1 << bs) - 1
        values = u
    else:
        if bs < 16:
            shift = 16 - bs
            np.left_shift(s, shift, out=s)
            np.right_shift(s, shift, out=s)  # arithmetic: sign-extends
        lo, hi = -(1 << (bs - 1)), (1 << (bs - 1)) - 1
        values = s
    pad = _padding_mask(values, h)
    slope, intercept = h.slope, h.intercept
    clipped = 0
    if slope == 1.0 and math.isfinite(intercept) and intercept == int(intercept):
        if -32768 <= lo + intercept and hi + intercept <= 32767:
            if intercept:
                # the stored range fits int16 here (unsigned < 2**15), so the int16 view is exact
                np.add(s, np.int16(intercept), out=s)
        else:
            t = values.astype(np.int32)
            t += int(intercept)
            clipped = _count_outside(t, pad)
            np.clip(t, -32768, 32767, out=t)
            s[...] = t
    else:
        s[...], clipped = _rescaled(values, h, pad)
    if pad is not None:
        s[pad] = AIR_HU
    return clipped


def stored_to_hu(values: np.ndarray, h: FileHeader, padding: bool = True) -> np.ndarray:
    """General path: any stored dtype, any slope/intercept; rounds and clips to int16."""
    pad = _padding_mask(values, h) if padding else None
    hu, _ = _rescaled(values, h, pad)
    if pad is not None:
        hu[pad] = AIR_HU
    return hu


def _rescaled(values: np.ndarray, h: FileHeader, pad: np.ndarray | None) -> tuple[np.ndarray, int]:
    f = np.rint(values.astype(np.float64) * h.slope + h.intercept)
    clipped = _count_outside(f, pad)
    return np.clip(f, -32768, 32767).astype(np.int16), clipped


def _count_outside(v: np.ndarray, pad: np.ndarray | None) -> int:
    """Values int16 cannot hold (NaN included), padding pixels aside (they become air)."""
    bad = ~((v >= -32768) & (v <= 32767))
    if pad is not None:
        bad &= ~pad
    return int(np.count_nonzero(bad))


def _padding_mask(values: np.ndarray, h: FileHeader) -> np.ndarray | None:
    """Pixels equal to PixelPaddingValue, or between it and PixelPaddingRangeLimit."""
    if h.padding is None:
        return None
    a = _as_stored(h.padding, h)
    if h.padding_limit is None:
        mask = values == a
    else:
        b = _as_stored(h.padding_limit, h)
        lo, hi = min(a, b), max(a, b)
        mask = (values >= lo) & (values <= hi)
    return mask if mask.any() else None


def _as_stored(v: int, h: FileHeader) -> int:
    """A padding value masked / sign-extended the way the stored pixels are."""
    bs = h.bits_stored
    if h.pixel_representation == 0:
        return v & ((1 << bs) - 1)
    v &= (1 << bs) - 1
    return v - (1 << bs) if v >= 1 << (bs - 1) else v
