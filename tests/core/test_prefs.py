"""The preferences model without Qt: where the file is, what it holds, damaged files, and
the keymap's refusal of a key two actions would share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ictview.core import overlay as ov
from ictview.core import prefs as P


def test_settings_path_order(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert P.settings_path(environ=env) == tmp_path / "xdg" / "ictview" / "settings.json"
    env[P.SETTINGS_ENV] = str(tmp_path / "env.json")
    assert P.settings_path(environ=env) == tmp_path / "env.json"
    assert P.settings_path(tmp_path / "arg.json", environ=env) == tmp_path / "arg.json"
    # a relative XDG_CONFIG_HOME is ignored, as the XDG spec says
    rel = P.settings_path(environ={"XDG_CONFIG_HOME": "rel"})
    assert rel.parts[-3:] == (".config", "ictview", "settings.json") and rel.is_absolute()


@pytest.mark.parametrize("raw, canon", [
    ("ctrl+shift+z", "Ctrl+Shift+Z"), ("Shift+Ctrl+Z", "Ctrl+Shift+Z"),
    ("shift+meta+alt+ctrl+k", "Meta+Ctrl+Alt+Shift+K"), ("delete", "Del"),
    ("pageup", "PgUp"), ("f1", "F1"), ("Ctrl++", "Ctrl++"), ("]", "]"), ("b", "B"),
    ("ctrl+k, ctrl+c", "Ctrl+K, Ctrl+C"),
])
def test_normalize_key(raw, canon):
    assert P.normalize_key(raw) == canon


def test_normalize_key_rejects_unknown_modifier():
    with pytest.raises(ValueError, match="unknown modifier"):
        P.normalize_key("Hyper+K")


def _keymap():
    return P.Keymap({
        "export": P.ActionInfo("Export labels…", ("Ctrl+E",)),
        "brush": P.ActionInfo("Brush", ("B",)),
        "eraser": P.ActionInfo("Eraser", ("X",)),
    })


def test_bind_conflict_is_refused_and_names_the_other_action():
    km = _keymap()
    with pytest.raises(P.KeyConflict, match="Ctrl\\+E is already the shortcut of “Export"):
        km.bind("brush", ["ctrl+e"])
    assert km.keys("brush") == ("B",)  # nothing changed
    km.bind("brush", ["Y", "b"])
    assert km.keys("brush") == ("Y", "B") and km.owner("y") == "brush"
    assert km.overrides() == {"brush": ["Y", "B"]}
    km.bind("eraser", [])  # unbinding is allowed
    km.bind("brush", ["X"])  # ... and frees the key
    assert km.overrides() == {"brush": ["X"], "eraser": []}
    assert km.conflicts() == []


def test_stored_swap_applies_and_conflicts_are_reported():
    km = _keymap()
    assert km.apply_overrides({"brush": ["X"], "eraser": ["B"]}) == []
    assert km.keys("brush") == ("X",) and km.keys("eraser") == ("B",)
    km = _keymap()
    problems = km.apply_overrides({"brush": ["Ctrl+E"], "nosuch": ["Q"]})
    assert any("unknown action 'nosuch'" in p for p in problems)
    assert any(p.startswith("brush: Ctrl+E is already") for p in problems)
    assert km.keys("brush") == ("B",) and km.keys("export") == ("Ctrl+E",)


def test_round_trip_stores_only_what_differs(tmp_path):
    path = tmp_path / "cfg" / "settings.json"
    prefs = P.Preferences(keymap={"brush": ("Y",)}, label_colors={"SDH": (1, 2, 3),
                                                                   "EDH": (255, 140, 0)},
                          review_palette="colour-blind", default_layout="mpr-2x2",
                          default_preset="subdural", window_presets={"bone": (500.0, 2500.0),
                                                                     "brain": (40.0, 80.0)})
    P.save(prefs, path)
    d = json.loads(path.read_text())
    assert d == {"version": 1, "keymap": {"brush": ["Y"]}, "label_colors": {"SDH": "#010203"},
                 "review_palette": "colour-blind", "default_layout": "mpr-2x2",
                 "default_preset": "subdural", "window_presets": {"bone": [500.0, 2500.0]}}
    back = P.load(path)
    assert not back.damaged
    assert back.prefs.label_rgb("SDH") == (1, 2, 3)
    assert back.prefs.label_rgb("IVH") == (170, 80, 255)
    assert back.prefs.preset_values()["bone"] == (500.0, 2500.0)
    assert back.prefs.preset_values()["brain"] == (40, 80)
    assert (back.prefs.review_palette, back.prefs.default_layout) == ("colour-blind", "mpr-2x2")
    assert P.load(tmp_path / "missing.json").prefs == P.Preferences()


@pytest.mark.parametrize("text, why", [
    ("{not json", "not JSON"),
    ('{"review_palette": "rainbow"}', "review_palette: 'rainbow'"),
    ('{"label_colors": {"SDH": "yellow"}}', "label_colors.SDH: 'yellow' is not a colour"),
    ('{"window_presets": {"brain": [40, 0]}}', "window_presets.brain"),
    ('{"default_layout": "4x4"}', "default_layout"),
    ('{"colour": 1}', "unknown setting 'colour'"),
    ('[1, 2]', "not a JSON object"),
])
def test_damaged_file_gives_one_line_and_is_left_alone(tmp_path, text, why):
    path = tmp_path / "settings.json"
    path.write_text(text)
    got = P.load(path)
    assert got.damaged and got.prefs == P.Preferences()
    assert str(path) in got.problem and why in got.problem and "\n" not in got.problem
    assert path.read_text() == text  # loading never rewrites it
    # an explicit save keeps the damaged file beside the new one
    P.save(got.prefs.with_(review_palette="colour-blind"), path, damaged=True)
    assert (tmp_path / "settings.json.bad").read_text() == text
    assert P.load(path).prefs.review_palette == "colour-blind"


def test_colour_blind_palette_lut():
    codes = np.array([ov.REFERENCE_ONLY, ov.PREDICTION_ONLY, ov.OVERLAP, 0], np.uint8)
    lut = ov.comparison_lut("colour-blind")
    assert [tuple(v) for v in lut[codes]] == [(86, 180, 233, 255), (230, 159, 0, 255),
                                              (255, 255, 255, 255), (0, 0, 0, 0)]
    assert tuple(ov.comparison_lut()[ov.REFERENCE_ONLY]) == (255, 0, 0, 255)
