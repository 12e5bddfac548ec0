import numpy as np

from ictview.core.window import PRESET_KEYS, WINDOW_PRESETS, apply_window, window_levels


def test_presets_and_levels():
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert WINDOW_PRESETS["subdural"] == (75, 215)
    assert WINDOW_PRESETS["stroke"] == (40, 40)
    assert WINDOW_PRESETS["bone"] == (600, 2800)
    assert PRESET_KEYS == ("brain", "subdural", "stroke", "bone")
    assert window_levels(40, 80) == (0.0, 80.0)
    assert window_levels(0, 0) == (-0.5, 0.5)  # width clamped to 1 HU


def test_apply_window():
    out = apply_window(np.array([-100, 0, 40, 80, 1000], np.int16), 40, 80)
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])
    assert out.dtype == np.float32
