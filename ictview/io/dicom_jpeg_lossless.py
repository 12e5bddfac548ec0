"""JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection
Value 1): the transfer syntax 1.2.840.10008.1.2.4.70 most CT archives use.

pydicom 3 decodes it (pylibjpeg-libjpeg, gdcm) but has no encoder, so the writer
uses this one: ITU-T T.81 Annex H with a per-image optimal Huffman table (Annex K.2),
vectorised with numpy (a 512x512 slice encodes in a few tens of milliseconds).
"""

from __future__ import annotations

import struct

import numpy as np


def _huffman_code_lengths(freq: np.ndarray) -> np.ndarray:
    """Code lengths (<= 16) for symbols 0..len(freq)-1, T.81 Annex K.2.

    A reserved extra symbol with frequency 1 keeps any code from being all ones."""
    n = len(freq)
    f = [int(v) for v in freq] + [1]  # index n = the reserved symbol
    codesize = [0] * (n + 1)
    others = [-1] * (n + 1)
    while True:
        live = [i for i in range(n + 1) if f[i] > 0]
        if len(live) < 2:
            break
        # v1: least frequency (largest index on ties), v2: next least
        v1 = min(live, key=lambda i: (f[i], -i))
        v2 = min((i for i in live if i != v1), key=lambda i: (f[i], -i))
        f[v1] += f[v2]
        f[v2] = 0
        codesize[v1] += 1
        while others[v1] != -1:
            v1 = others[v1]
            codesize[v1] += 1
        others[v1] = v2
        codesize[v2] += 1
        while others[v2] != -1:
            v2 = others[v2]
            codesize[v2] += 1
    bits = [0] * 33
    for size in codesize:
        if size:
            bits[size] += 1
    # Annex K.2 figure K.3: limit code lengths to 16 bits
    i = 32
    while i > 16:
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
        i -= 1
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the reserved symbol's code (the longest)
    # assign lengths to symbols by decreasing frequency (ties: smaller symbol first)
    order = sorted((s for s in range(n) if freq[s] > 0), key=lambda s: (-int(freq[s]), s))
    lengths = np.zeros(n, dtype=np.int64)
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length]):
            lengths[order[k]] = length
            k += 1
    return lengths


def _canonical_codes(lengths: np.ndarray) -> tuple[np.ndarray, bytes, bytes]:
    """Codes per symbol, the BITS list (16 counts) and HUFFVAL for the DHT segment (Annex C)."""
    symbols = sorted((s for s in range(len(lengths)) if lengths[s] > 0), key=lambda s: (lengths[s], s))
    codes = np.zeros(len(lengths), dtype=np.int64)
    code = 0
    prev_len = 0
    for s in symbols:
        code <<= int(lengths[s]) - prev_len
        prev_len = int(lengths[s])
        codes[s] = code
        code += 1
    counts = bytes(int(np.sum(lengths == L)) for L in range(1, 17))
    return codes, counts, bytes(symbols)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def encode_jpeg_lossless_sv1(samples: np.ndarray, precision: int) -> bytes:
    """Encode a 2D array of unsigned samples (< 2**precision) as one JPEG Lossless SV1 frame."""
    img = np.asarray(samples)
    if img.ndim != 2:
        raise ValueError("JPEG lossless encoder takes one 2D frame")
    if not 2 <= precision <= 16:
        raise ValueError(f"JPEG lossless precision must be 2..16, got {precision}")
    x = img.astype(np.int64)
    if x.size and (x.min() < 0 or x.max() >= (1 << precision)):
        raise ValueError(f"samples do not fit {precision}-bit unsigned precision")
    rows, cols = x.shape
    # predictors (H.1.2.1): first sample 2**(P-1); first row: left; first column: above; else left
    pred = np.empty_like(x)
    pred[:, 1:] = x[:, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[0, 0] = 1 << (precision - 1)
    # differences modulo 2**16, in -32767..32768
    diff = ((x - pred + 32767) % 65536 - 32767).ravel()
    mag = np.abs(diff)
    ssss = np.zeros(diff.shape, dtype=np.int64)
    nz = mag > 0
    ssss[nz] = np.floor(np.log2(mag[nz])).astype(np.int64) + 1
    # additional bits: low SSSS bits of diff, or of diff-1 when negative; none for SSSS 16
    extra = np.where(diff < 0, diff - 1, diff) & ((np.int64(1) << ssss) - 1)
    extra[ssss == 16] = 0
    extra_len = np.where(ssss == 16, 0, ssss)

    lengths = _huffman_code_lengths(np.bincount(ssss, minlength=17))
    codes, counts, huffval = _canonical_codes(lengths)
    value = (codes[ssss] << extra_len) | extra  # <= 32 bits per sample
    nbits = lengths[ssss] + extra_len
    stream = _pack_bits(value, nbits)
    # byte stuffing: a 0x00 after every 0xFF in entropy-coded data
    ff = np.flatnonzero(stream == 0xFF)
    if ff.size:
        stream = np.insert(stream, ff + 1, 0)

    out = bytearray(b"\xff\xd8")
    out += _segment(0xFFC3, struct.pack(">BHHB", precision, rows, cols, 1) + bytes([1, 0x11, 0]))
    out += _segment(0xFFC4, bytes([0x00]) + counts + huffval)
    # SOS: one component, table 0, Ss = predictor 1, Se = 0, Ah/Al (point transform) = 0
    out += _segment(0xFFDA, bytes([1, 1, 0x00, 1, 0, 0]))
    out += stream.tobytes()
    out += b"\xff\xd9"
    return bytes(out)


def _pack_bits(value: np.ndarray, nbits: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Concatenate variable-length codes (MSB first) into bytes, padding the end with 1 bits."""
    pieces = []
    shifts = np.arange(31, -1, -1, dtype=np.int64)  # bit 31 .. bit 0
    for start in range(0, len(value), chunk):
        v = value[start : start + chunk]
        n = nbits[start : start + chunk]
        # left-align each code in 32 bits, then keep its first n bits
        aligned = v << (32 - n)
        bits = ((aligned[:, None] >> shifts) & 1).astype(np.uint8)
        keep = np.arange(32)[None, :] < n[:, None]
        pieces.append(bits[keep])
    allbits = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)
    pad = (-len(allbits)) % 8
    if pad:
        allbits = np.concatenate([allbits, np.ones(pad, dtype=np.uint8)])
    return np.packbits(allbits)
