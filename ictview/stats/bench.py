"""Benchmark of the Table 1 pixel bootstrap: fast (histograms) vs exact (sorting pixels).

Synthetic float16 predictions of two runs on `n_images` images (paper: 529 of
512x512) with ~40% positive images, lesion blobs and false-positive mimics.
The fast path is timed in full (histograms + 1000 bootstraps of AP and Dice for
both runs). The exact path (one stable sort of every pixel, as scikit-learn does)
is timed once on all pixels and extrapolated to the 2 x (1 + n_boot) evaluations
a naive bootstrap would need; the fast AP is checked against the exact AP on the
full set and on the first resample, and coarser uniform binnings are compared.

    python -m ictview.stats.bench [--images 529] [--size 512] [--boot 1000]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

import numpy as np

from ictview.stats.bootstrap import bootstrap_exams, bootstrap_pixels, resample_counts
from ictview.stats.metrics import average_precision
from ictview.stats.pixel_stats import PixelStats, float16_bin_values, image_histogram


def synthetic_image(
    index: int, size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, run A scores, run B scores) of one image: bool, float16, float16."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    head = (yy / 0.42) ** 2 + (xx / 0.36) ** 2 < 1
    truth = np.zeros((size, size), bool)
    bump = np.zeros((size, size), np.float32)
    if rng.random() < 0.4:  # hemorrhage
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(-0.25, 0.25, 2)
            ry, rx = rng.uniform(0.01, 0.06, 2)
            truth |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    for _ in range(rng.integers(0, 3)):  # mimics: calcification / falx-like false positives
        cy, cx = rng.uniform(-0.3, 0.3, 2)
        r = rng.uniform(0.005, 0.02)
        bump += 4.0 * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    truth &= head
    runs = []
    for strength, mimic in ((5.0, 1.0), (5.4, 0.8)):
        logit = (
            -5.0
            + strength * truth
            + mimic * bump
            + 1.3 * rng.standard_normal((size, size), np.float32)
        )
        p = 1.0 / (1.0 + np.exp(-logit))
        runs.append(np.where(head, p, 0).astype(np.float16))  # outside the brain: exactly 0
    return truth, runs[0], runs[1]


def bench_stats(
    n_images: int = 529,
    size: int = 512,
    n_boot: int = 1000,
    seed: int = 0,
    exact: bool = True,
    out: Callable[[str], None] = print,
) -> dict:
    """Run the benchmark, print the figures through `out` and return them."""
    fig: dict = {"n_images": n_images, "size": size, "n_boot": n_boot}
    scores_a = np.empty((n_images, size, size), np.float16) if exact else None
    truths = np.empty((n_images, size, size), bool) if exact else None
    hists_a, hists_b = [], []
    t_gen = t_hist = 0.0
    for i in range(n_images):
        t0 = time.perf_counter()
        truth, a, b = synthetic_image(i, size, seed)
        t1 = time.perf_counter()
        hists_a.append(image_histogram(a, truth))
        hists_b.append(image_histogram(b, truth))
        t_hist += time.perf_counter() - t1
        t_gen += t1 - t0
        if exact:
            scores_a[i], truths[i] = a, truth
    ids = tuple(str(i) for i in range(n_images))
    stats = {
        "A": PixelStats(np.stack(hists_a), float16_bin_values(), ids),
        "B": PixelStats(np.stack(hists_b), float16_bin_values(), ids),
    }
    del hists_a, hists_b
    n_pix = n_images * size * size
    out(
        f"pixel set: {n_images} images of {size}x{size} = {n_pix / 1e6:.1f} M pixels per run, "
        f"{int(stats['A'].totals()[0].sum())} positive; 2 runs; {n_boot} bootstraps"
    )
    out(f"synthetic data generation (not part of either path): {t_gen:.1f} s")

    t0 = time.perf_counter()
    # chosen on the bench set itself: a study chooses it on the validation role
    thresholds = {r: s.best_dice_threshold().threshold for r, s in stats.items()}
    boot = bootstrap_pixels(stats, dice_thresholds=thresholds, n_boot=n_boot, seed=seed)
    comps = {m: boot.compare("A", "B", m) for m in ("ap", "dice")}
    t_boot = time.perf_counter() - t0
    t_fast = t_hist + t_boot
    fig.update(fast_hist_s=t_hist, fast_bootstrap_s=t_boot, fast_total_s=t_fast)
    out(
        f"fast path: histograms {t_hist:.1f} s + thresholds, bootstrap of AP and Dice, "
        f"paired tests {t_boot:.1f} s = {t_fast:.1f} s total"
    )
    for r in ("A", "B"):
        for m in ("ap", "dice"):
            e = boot.estimate(r, m)
            out(f"  run {r} {m:4s} {e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]")
    for m, c in comps.items():
        out(
            f"  B - A {m:4s} delta {c.delta:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] z {c.z:.2f} "
            f"p {c.p:.3g} KS p {c.ks_p:.3f}"
        )

    t0 = time.perf_counter()
    labels = np.random.default_rng(seed).random(481) < 0.42
    exam_scores = {
        r: np.where(labels, 0.7, 0.3) + np.random.default_rng([seed, k]).normal(0, 0.25, 481)
        for k, r in enumerate(("A", "B"))
    }
    bootstrap_exams(labels, exam_scores, n_boot=n_boot, seed=seed).compare("A", "B", "auc")
    fig["exam_bootstrap_s"] = time.perf_counter() - t0
    out(
        f"exam AUC bootstrap, 481 exams, 2 runs, {n_boot} resamples + paired test: "
        f"{fig['exam_bootstrap_s']:.2f} s"
    )

    if exact:
        fast_ap = boot.points["A"]["ap"].value
        t0 = time.perf_counter()
        exact_ap = average_precision(truths.ravel(), scores_a.ravel()).value
        t_exact = time.perf_counter() - t0
        naive = t_exact * 2 * (n_boot + 1)
        fig.update(
            exact_ap=exact_ap,
            fast_ap=fast_ap,
            ap_error=abs(fast_ap - exact_ap),
            exact_one_ap_s=t_exact,
            exact_bootstrap_extrapolated_s=naive,
        )
        out(
            f"exact path: one AP over all {n_pix / 1e6:.1f} M pixels (stable sort) {t_exact:.1f} s;"
            f" naive bootstrap 2 runs x {n_boot + 1} = {naive:.0f} s = {naive / 3600:.1f} h"
            " (extrapolated)"
        )
        out(
            f"AP run A: exact {exact_ap:.10f} fast {fast_ap:.10f} "
            f"|error| {abs(fast_ap - exact_ap):.2e}"
        )
        take = np.repeat(np.arange(n_images), resample_counts(n_images, n_boot, seed)[0])
        exact_r0 = average_precision(truths[take].ravel(), scores_a[take].ravel()).value
        fast_r0 = boot.replicates["A"]["ap"][0]
        fig["resample0_ap_error"] = abs(fast_r0 - exact_r0)
        out(
            f"AP run A, bootstrap resample 0: exact {exact_r0:.10f} fast {fast_r0:.10f} "
            f"|error| {abs(fast_r0 - exact_r0):.2e}"
        )
        for n_bins in (2**16, 2**12, 2**8):
            coarse = stats["A"].rebin(n_bins).average_precision().value
            fig[f"uniform_{n_bins}_ap_error"] = abs(coarse - exact_ap)
            out(
                f"  uniform {n_bins} bins instead of float16 bins: AP {coarse:.10f} "
                f"|error| {abs(coarse - exact_ap):.2e}"
            )
    fig["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out(f"peak memory (max RSS): {fig['max_rss_mb']:.0f} MB")
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=529)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-exact", action="store_true", help="skip the exact (slow) path")
    a = ap.parse_args(argv)
    bench_stats(a.images, a.size, a.boot, a.seed, exact=not a.no_exact)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
