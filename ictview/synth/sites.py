"""Site profiles and preset sizes of the synthetic multi-site study.

A site profile is the set of distributions an exam of that site is drawn from:
scanners, head size, noise level and texture, kernel, HU offset, mimics. The
shifts between atlantis (labeled) and kaggle / cq500 are the point of the
study: they are real but moderate (see DESIGN.md, "Synthetic multi-site data").
"""

from __future__ import annotations

from dataclasses import dataclass

import pydicom.uid as uids

from ictview.errors import IctviewError

Range = tuple[float, float]


@dataclass(frozen=True)
class Preset:
    matrix: int  # rows = columns of every image
    slices: int  # slices of the series chosen for interpretation (5 mm class)
    thin_slices: int  # slices of the cq500 thin (0.625 mm) series, centred on the head
    exams: dict[str, int]  # per site
    cq500_pixel_labeled: int  # cq500 exams with reference masks + 3 repeated segmentations


# The one table of preset sizes.
#   tiny: seconds, for tests; demo: about a minute on 2 cores, for the GUI demo;
#   cpu-study: the whole study with significance on 2 CPU cores in <= 30 min (sized for
#     statistics: 750 test exams at ~42 % positive, 30 of them pixel-labeled and segmented 3x;
#     100 validation exams at the site's 11 % -> 11 positive, all pixel-labeled; unlabeled 12x
#     the labeled site);
#   paper-mini: a GPU run that shows the study's effect (generate it on the GPU host).
PRESETS: dict[str, Preset] = {
    "tiny": Preset(128, 8, 8, {"atlantis": 6, "kaggle": 8, "validation": 4, "cq500": 6}, 3),
    "demo": Preset(512, 24, 12, {"atlantis": 10, "kaggle": 12, "validation": 4, "cq500": 8}, 4),
    # cpu-study test-site size: a power calculation written before any run at this size
    # (issue 10, point 4). At 120 test exams the SS - baseline exam-AUC differences of seeds
    # 0/1/2 were +0.038 (p .14) / +0.008 (.53) / +0.020 (.27); the paired-bootstrap Z test's
    # SE is delta / z(p/2): 0.0257 / 0.0127 / 0.0181, pooled (RMS) 0.0196. The SE of an AUC
    # difference scales as 1/sqrt(n) at a fixed positive rate, so at n exams
    # SE(n) = 0.0196 sqrt(120 / n). Planning effect: the mean of the three seeds, +0.022 (seed
    # 0's +0.038 alone would overstate it: the winner's curse of a noisy estimate). Power of a
    # two-sided 0.05 test, Phi(0.022 / SE(n) - 1.96): n = 120: 20 %; 481 (the paper's CQ500):
    # 61 %; 750: 80 % (n = 120 (2.80 * 0.0196 / 0.022)^2 = 746); at +0.038, n = 750 gives
    # > 99 %. So 750 test exams. Only the NUMBER of exams changes: same profile, positive rate
    # and difficulty; the other sites' exams are drawn from their own streams and unchanged.
    # The pixel-labeled subset stays at 30 exams: the Dice / pixel AP differences were
    # already 2.5-6 SEs on seeds 0 and 1 (SE 0.009-0.013). (Which exams are positive and
    # pixel-labeled is redrawn with n: the plan's permutation depends on it.) Cost: inference
    # is ~30 ms per exam per model, 8 models: +630 exams = ~2.5 min of the study's 30
    # (measured afterwards: 23 ms, ~2 min; seed 0's study took 16:38 on a quiet machine).
    # Results of the three seeds at this size: README, "The study with significance".
    "cpu-study": Preset(
        128, 8, 8, {"atlantis": 40, "kaggle": 480, "validation": 100, "cq500": 750}, 30
    ),
    "paper-mini": Preset(
        256, 28, 16, {"atlantis": 160, "kaggle": 800, "validation": 40, "cq500": 200}, 23
    ),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise IctviewError(
            f"preset '{name}': unknown; choose one of {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True)
class Scanner:
    manufacturer: str
    model: str
    kernels: tuple[str, ...]
    # how the vendor stores pixels: intercept, signed or not, padding outside the FOV circle
    rescale_intercept: float = -1024.0
    pixel_representation: int = 0
    pixel_padding_value: int | None = None  # stored value; None: outside FOV written as air
    kvp: float = 120.0
    window: tuple[float, float] = (40.0, 80.0)
    instance_order_down: bool = False  # InstanceNumber 1 = most superior slice


GE_VCT = Scanner("GE MEDICAL SYSTEMS", "LightSpeed VCT", ("STANDARD", "SOFT"), -1024.0, 1)
GE_750 = Scanner("GE MEDICAL SYSTEMS", "Discovery CT750 HD", ("STANDARD",), -1024.0, 1)
GE_660 = Scanner("GE MEDICAL SYSTEMS", "Optima CT660", ("STANDARD", "SOFT"), -1024.0, 1)
GE_REV = Scanner("GE MEDICAL SYSTEMS", "Revolution CT", ("STANDARD",), -1024.0, 1)
GE_PAD = Scanner("GE MEDICAL SYSTEMS", "LightSpeed16", ("STANDARD",), -1024.0, 1, -2000,
                 instance_order_down=True)
GE_BRIGHT = Scanner("GE MEDICAL SYSTEMS", "BrightSpeed", ("STANDARD", "SOFT"), -1024.0, 1, -2000,
                    instance_order_down=True)
SIEMENS_AS = Scanner("SIEMENS", "SOMATOM Definition AS", ("H30s", "H31s", "J40s"), -1024.0, 0)
SIEMENS_SENS = Scanner("SIEMENS", "Sensation 64", ("H31s", "H40s"), -1024.0, 0, kvp=120.0)
SIEMENS_EMO = Scanner("SIEMENS", "Emotion 16", ("H30s", "H40s"), -1024.0, 0, kvp=130.0,
                      window=(35.0, 80.0))
PHILIPS_ICT = Scanner("Philips", "iCT 256", ("UB", "UC"), -1024.0, 0, window=(35.0, 90.0))
PHILIPS_MX = Scanner("Philips", "MX 16-slice", ("UB", "EC"), -1024.0, 0, window=(40.0, 90.0))
TOSHIBA = Scanner("TOSHIBA", "Aquilion ONE", ("FC26", "FC21"), 0.0, 1, instance_order_down=True)

ELE = uids.ExplicitVRLittleEndian
ILE = uids.ImplicitVRLittleEndian
JLL = uids.JPEGLosslessSV1
J2K = uids.JPEG2000Lossless
JLS = uids.JPEGLSLossless
RLE = uids.RLELossless


@dataclass(frozen=True)
class SiteProfile:
    name: str
    role: str
    prefix: str  # exam names: f"{prefix}{i:04d}" (cq500: f"CQ500-CT-{i}")
    positive_rate: float
    # exam-level subtype rates (paper's figures where it gives them)
    subtype_rates: dict[str, float]
    scanners: tuple[Scanner, ...]
    institutions: tuple[str, ...]
    # transfer syntaxes cycled through by exam index, so every preset shows each of them
    transfer_syntaxes: tuple[str, ...]
    years: tuple[int, int]
    age: Range  # mean, sd
    female_rate: float
    skull: bool  # False: skull, scalp and face removed (atlantis)
    fov_mm: Range  # reconstruction diameter
    head_scale: Range  # brain size relative to an average adult
    aspect: Range  # AP / LR ratio of the brain outline
    noise_hu: Range  # pixel noise sd in brain
    grain_mm: Range  # noise correlation length (texture)
    blotch: Range  # share of low-frequency (blotchy) noise
    blur_mm: Range  # kernel blur sd
    sharpen: Range  # unsharp-mask amount of the kernel (edge overshoot)
    hu_offset: Range  # calibration offset
    slice_thickness: tuple[float, ...]
    streak_hu: Range  # beam-hardening streak amplitude near the skull base
    falx_hu: Range  # falx and sinus density (dense-falx mimic)
    sinus_hu: Range
    p_pineal_calc: float
    p_choroid_calc: float
    p_other_calc: float  # basal ganglia specks, falx plaques
    calc_hu: Range
    pv_bone: Range  # partial-volume bone at the skull base / vertex (0..1)
    atrophy: Range
    thin_series: bool = False
    subtypes_per_exam: float = 1.6  # mean number of subtypes of a positive exam


SITES: dict[str, SiteProfile] = {
    "atlantis": SiteProfile(
        name="atlantis", role="labeled", prefix="ATL-", positive_rate=0.269,
        subtype_rates={"SAH": 0.182, "SDH": 0.140, "IPH": 0.133, "EDH": 0.050, "IVH": 0.015},
        scanners=(GE_VCT, GE_750, GE_660, GE_REV),
        institutions=("Atlantis University Hospital",),
        transfer_syntaxes=(ELE, ELE, ELE, ILE),
        years=(2010, 2017), age=(53.4, 17.1), female_rate=0.363,
        skull=False, fov_mm=(220.0, 230.0), head_scale=(0.96, 1.06), aspect=(1.22, 1.30),
        noise_hu=(3.0, 4.0), grain_mm=(0.45, 0.55), blotch=(0.0, 0.05),
        blur_mm=(0.45, 0.55), sharpen=(0.0, 0.1), hu_offset=(-1.0, 1.0),
        slice_thickness=(5.0,), streak_hu=(2.0, 5.0), falx_hu=(38.0, 48.0),
        sinus_hu=(40.0, 50.0), p_pineal_calc=0.25, p_choroid_calc=0.15, p_other_calc=0.03,
        calc_hu=(80.0, 160.0), pv_bone=(0.0, 0.2), atrophy=(0.0, 0.7),
    ),
    "kaggle": SiteProfile(
        name="kaggle", role="unlabeled", prefix="KAG-", positive_rate=0.14,
        subtype_rates={"SDH": 0.063, "SAH": 0.048, "IPH": 0.048, "IVH": 0.035, "EDH": 0.006},
        scanners=(GE_VCT, GE_PAD, SIEMENS_AS, SIEMENS_SENS, PHILIPS_ICT, TOSHIBA),
        institutions=("Stanford", "Thomas Jefferson", "Unifesp", "Unity Health", "Brigham"),
        transfer_syntaxes=(ELE, JLL, ELE, J2K, ILE, ELE, RLE, ELE, JLS, ELE),
        years=(2015, 2019), age=(55.0, 19.0), female_rate=0.45,
        # the RSNA corpus pools many institutions and vendors: its ranges span the test
        # site's (cq500) noise texture, kernels and mimics, so a student trained on it can
        # learn what the test site looks like without a label from there
        skull=True, fov_mm=(200.0, 260.0), head_scale=(0.86, 1.10), aspect=(1.10, 1.35),
        noise_hu=(3.0, 9.0), grain_mm=(0.35, 1.3), blotch=(0.0, 0.45),
        blur_mm=(0.3, 0.9), sharpen=(0.0, 0.4), hu_offset=(-5.0, 6.0),
        slice_thickness=(5.0, 5.0, 5.0, 3.0), streak_hu=(8.0, 36.0), falx_hu=(45.0, 72.0),
        sinus_hu=(50.0, 72.0), p_pineal_calc=0.65, p_choroid_calc=0.5, p_other_calc=0.3,
        calc_hu=(100.0, 400.0), pv_bone=(0.3, 1.0), atrophy=(0.0, 1.0),
    ),
    "validation": SiteProfile(
        name="validation", role="validation", prefix="VAL-", positive_rate=0.11,
        subtype_rates={"SDH": 0.04, "SAH": 0.04, "IPH": 0.04, "IVH": 0.01, "EDH": 0.01},
        scanners=(GE_750, SIEMENS_AS, PHILIPS_ICT),
        institutions=("Harbor County Hospital", "Lakeside Medical Center"),
        transfer_syntaxes=(ELE, ELE, JLS, ELE, RLE),
        years=(2017, 2019), age=(55.0, 18.0), female_rate=0.42,
        skull=True, fov_mm=(210.0, 245.0), head_scale=(0.92, 1.06), aspect=(1.18, 1.32),
        noise_hu=(3.0, 6.0), grain_mm=(0.4, 0.8), blotch=(0.0, 0.15),
        blur_mm=(0.4, 0.7), sharpen=(0.0, 0.2), hu_offset=(-2.5, 2.5),
        slice_thickness=(5.0,), streak_hu=(5.0, 18.0), falx_hu=(42.0, 58.0),
        sinus_hu=(45.0, 60.0), p_pineal_calc=0.45, p_choroid_calc=0.3, p_other_calc=0.1,
        calc_hu=(100.0, 300.0), pv_bone=(0.2, 0.7), atrophy=(0.0, 0.9),
    ),
    "cq500": SiteProfile(
        name="cq500", role="test", prefix="CQ500-CT-", positive_rate=0.418,
        subtype_rates={"IPH": 0.273, "SAH": 0.122, "SDH": 0.108, "IVH": 0.057, "EDH": 0.026},
        scanners=(GE_BRIGHT, PHILIPS_MX, SIEMENS_EMO, GE_PAD),
        institutions=("CARING New Delhi", "Qure Partner Imaging Centre"),
        transfer_syntaxes=(ELE, JLL, ELE, J2K, ILE, ELE),
        years=(2016, 2017), age=(48.0, 18.0), female_rate=0.36,
        # unseen at atlantis: coarse blotchy noise texture, sharper kernel, +HU offset,
        # smaller, rounder heads, stronger streaks and more mimics
        skull=True, fov_mm=(235.0, 250.0), head_scale=(0.86, 0.98), aspect=(1.10, 1.22),
        noise_hu=(5.0, 8.0), grain_mm=(0.8, 1.3), blotch=(0.2, 0.45),
        blur_mm=(0.3, 0.45), sharpen=(0.15, 0.4), hu_offset=(2.0, 6.0),
        slice_thickness=(5.0,), streak_hu=(12.0, 35.0), falx_hu=(52.0, 70.0),
        sinus_hu=(55.0, 70.0), p_pineal_calc=0.65, p_choroid_calc=0.5, p_other_calc=0.25,
        calc_hu=(120.0, 400.0), pv_bone=(0.4, 1.0), atrophy=(0.0, 0.9),
        thin_series=True,
    ),
}

SITE_ORDER = ("atlantis", "kaggle", "validation", "cq500")
THIN_THICKNESS_MM = 0.625


def exam_name(site: SiteProfile, index: int) -> str:
    """index is 1-based."""
    if site.name == "cq500":
        return f"{site.prefix}{index}"
    return f"{site.prefix}{index:04d}"
