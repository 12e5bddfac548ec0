"""The user's preferences: keymap, label colours, review palette, default layout and
window presets (Qt-free; the GUI's Preferences dialog and its windows are views of it).

One JSON file, found in this order: an explicit path (`ictview open --settings FILE`),
the ICTVIEW_SETTINGS environment variable, `$XDG_CONFIG_HOME/ictview/settings.json`,
`~/.config/ictview/settings.json`. Only what differs from the defaults is stored, so a
default changed in a later version reaches users who never touched it.

A damaged or invalid file gives one line naming the file and the problem, the defaults
are used, and the file is left as it is (a later explicit save keeps it as `.bad`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ictview.core.labels import BY_CODE, LABEL_CLASSES
from ictview.core.overlay import REVIEW_PALETTES
from ictview.core.window import BUILTIN_PRESETS as WINDOW_PRESETS
from ictview.errors import IctviewError

SETTINGS_ENV = "ICTVIEW_SETTINGS"
FILE_NAME = "settings.json"
VERSION = 1
LAYOUTS = ("axial", "mpr", "mpr-2x2")
LAYOUT_TEXT = {"axial": "Axial", "mpr": "MPR 1 × 3", "mpr-2x2": "MPR 2 × 2"}
_KNOWN = {"version", "keymap", "label_colors", "review_palette", "default_layout",
          "default_preset", "window_presets"}

RGB = tuple[int, int, int]


def settings_path(explicit: str | os.PathLike | None = None,
                  environ: dict | None = None) -> Path:
    """Where the settings live (explicit > $ICTVIEW_SETTINGS > XDG config > ~/.config)."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    if env.get(SETTINGS_ENV):
        return Path(env[SETTINGS_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base).expanduser() if base and Path(base).is_absolute() \
        else Path.home() / ".config"  # the XDG spec: a relative value is ignored
    return root / "ictview" / FILE_NAME


# ---- key sequences (the form Qt's QKeySequence.toString(PortableText) writes) --------------

_MODIFIERS = ("Meta", "Ctrl", "Alt", "Shift")
_KEY_ALIASES = {"del": "Del", "delete": "Del", "pgup": "PgUp", "pageup": "PgUp",
                "pgdown": "PgDown", "pagedown": "PgDown", "esc": "Esc", "escape": "Esc",
                "return": "Return", "enter": "Enter", "home": "Home", "end": "End",
                "up": "Up", "down": "Down", "left": "Left", "right": "Right",
                "space": "Space", "tab": "Tab", "backspace": "Backspace", "ins": "Ins",
                "insert": "Ins", "backtab": "Backtab"}


def normalize_key(seq: str) -> str:
    """'shift+ctrl+z' -> 'Ctrl+Shift+Z': one spelling per key, so conflicts compare equal.
    Chords ("Ctrl+K, Ctrl+C") are normalised one by one. Raises ValueError on a chord
    with modifiers and no key."""
    chords = [c.strip() for c in str(seq).split(", ")]
    return ", ".join(_normalize_chord(c) for c in chords if c)


def _normalize_chord(chord: str) -> str:
    if chord == "+" or chord.endswith("++"):  # the '+' key itself
        parts = [p for p in chord[:-1].split("+") if p] + ["+"]
    else:
        parts = chord.split("+")
    mods, key = parts[:-1], parts[-1]
    canon = []
    for m in mods:
        name = {"control": "Ctrl", "cmd": "Meta", "win": "Meta", "option": "Alt"}.get(
            m.strip().lower(), m.strip().capitalize())
        if name not in _MODIFIERS:
            raise ValueError(f"'{chord}': unknown modifier '{m}'")
        canon.append(name)
    key = key.strip()
    if not key:
        raise ValueError(f"'{chord}': no key")
    low = key.lower()
    if low in _KEY_ALIASES:
        key = _KEY_ALIASES[low]
    elif len(key) == 1:
        key = key.upper()
    elif low[0] == "f" and low[1:].isdigit():
        key = "F" + low[1:]
    ordered = [m for m in _MODIFIERS if m in canon]
    return "+".join(ordered + [key])


class KeyConflict(IctviewError):
    """A shortcut already bound to another action."""

    def __init__(self, key: str, action: str, other: str, other_text: str):
        self.key, self.action, self.other = key, action, other
        super().__init__(f"{key} is already the shortcut of “{other_text}”: "
                         f"unbind it there first (nothing changed)")


@dataclass(frozen=True)
class ActionInfo:
    text: str  # the menu text without accelerators, as the cheat sheet shows it
    keys: tuple[str, ...]  # default shortcuts, normalised


class Keymap:
    """Action name -> shortcuts: the defaults the app defines, with the user's bindings on
    top. A binding that would give one key to two actions is refused (Qt would fire
    neither: an ambiguous shortcut)."""

    def __init__(self, defaults: dict[str, ActionInfo]):
        self.defaults = {a: ActionInfo(i.text, tuple(normalize_key(k) for k in i.keys))
                         for a, i in defaults.items()}
        self._bound: dict[str, tuple[str, ...]] = {a: i.keys for a, i in self.defaults.items()}

    def keys(self, action: str) -> tuple[str, ...]:
        return self._bound[action]

    def text(self, action: str) -> str:
        return self.defaults[action].text

    def actions(self) -> list[str]:
        return list(self.defaults)

    def owner(self, key: str, exclude: str | None = None) -> str | None:
        k = normalize_key(key)
        for a, keys in self._bound.items():
            if a != exclude and k in keys:
                return a
        return None

    def bind(self, action: str, keys) -> None:
        """Give `action` exactly these shortcuts (empty: none). Raises KeyConflict when one is
        another action's, KeyError for an unknown action, ValueError for a malformed key."""
        if action not in self.defaults:
            raise KeyError(action)
        new = tuple(dict.fromkeys(normalize_key(k) for k in keys if str(k).strip()))
        for k in new:
            other = self.owner(k, exclude=action)
            if other is not None:
                raise KeyConflict(k, action, other, self.text(other))
        self._bound[action] = new

    def reset(self, action: str) -> None:
        """Back to the default keys (refused like bind when another action took one)."""
        self.bind(action, self.defaults[action].keys)

    def overrides(self) -> dict[str, list[str]]:
        """What differs from the defaults (what the settings file stores)."""
        return {a: list(k) for a, k in self._bound.items() if k != self.defaults[a].keys}

    def apply_overrides(self, overrides: dict[str, list[str]]) -> list[str]:
        """Bind each stored override; returns one line per one that could not be applied
        (unknown action, bad key, conflict), the others take effect. Bindings are taken off
        first, so a stored swap of two keys (A<->B) is not refused half-way."""
        problems: list[str] = []
        known = {a: ks for a, ks in overrides.items() if a in self.defaults}
        problems += [f"unknown action '{a}' (ignored)" for a in overrides if a not in known]
        for a in known:
            self._bound[a] = ()
        for a, ks in known.items():
            try:
                self.bind(a, ks)
            except (KeyConflict, ValueError) as e:
                self._bound[a] = self.defaults[a].keys if not any(
                    self.owner(k, exclude=a) for k in self.defaults[a].keys) else ()
                problems.append(f"{a}: {e}")
        return problems

    def conflicts(self) -> list[tuple[str, list[str]]]:
        """Keys held by more than one action (the defaults must have none: a test checks)."""
        holders: dict[str, list[str]] = {}
        for a, keys in self._bound.items():
            for k in keys:
                holders.setdefault(k, []).append(a)
        return [(k, a) for k, a in holders.items() if len(a) > 1]


# ---- the preferences ----------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    keymap: dict[str, tuple[str, ...]] = field(default_factory=dict)  # overrides only
    label_colors: dict[str, RGB] = field(default_factory=dict)  # class code -> RGB, overrides
    review_palette: str = "standard"  # a key of core.overlay.REVIEW_PALETTES
    default_layout: str = "axial"
    default_preset: str = "brain"  # the window an exam opens in
    window_presets: dict[str, tuple[float, float]] = field(default_factory=dict)  # overrides

    def label_rgb(self, code: str) -> RGB:
        return tuple(self.label_colors.get(code, BY_CODE[code].color))

    def preset_values(self) -> dict[str, tuple[float, float]]:
        """Every preset's (center, width) in HU, the user's values over the built-in ones."""
        return {n: tuple(self.window_presets.get(n, cw)) for n, cw in WINDOW_PRESETS.items()}

    def with_(self, **changes) -> Preferences:
        return replace(self, **changes)

    def to_json(self) -> dict:
        d: dict = {"version": VERSION}
        if self.keymap:
            d["keymap"] = {a: list(k) for a, k in sorted(self.keymap.items())}
        colors = {c: "#%02x%02x%02x" % rgb for c, rgb in self.label_colors.items()
                  if tuple(rgb) != BY_CODE[c].color}
        if colors:
            d["label_colors"] = colors
        defaults = Preferences()
        for name in ("review_palette", "default_layout", "default_preset"):
            if getattr(self, name) != getattr(defaults, name):
                d[name] = getattr(self, name)
        presets = {n: list(cw) for n, cw in self.window_presets.items()
                   if tuple(map(float, cw)) != tuple(map(float, WINDOW_PRESETS[n]))}
        if presets:
            d["window_presets"] = presets
        return d


def _rgb(value, where: str) -> RGB:
    s = str(value).strip()
    if len(s) == 7 and s[0] == "#":
        try:
            return tuple(int(s[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            pass
    raise ValueError(f"{where}: '{value}' is not a colour (#rrggbb)")


def from_json(d) -> Preferences:
    """The file's object -> Preferences. Raises ValueError naming the first bad entry."""
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(d) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown setting '{unknown[0]}'")
    if d.get("version", VERSION) != VERSION:
        raise ValueError(f"version {d.get('version')!r} (this ictview reads {VERSION})")
    keymap = d.get("keymap", {})
    if not isinstance(keymap, dict):
        raise ValueError("keymap: not an object of action -> [keys]")
    km: dict[str, tuple[str, ...]] = {}
    for action, keys in keymap.items():
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"keymap.{action}: not a list of keys")
        km[str(action)] = tuple(normalize_key(k) for k in keys if k.strip())
    colors = d.get("label_colors", {})
    if not isinstance(colors, dict):
        raise ValueError("label_colors: not an object of class -> #rrggbb")
    lc = {}
    for code, value in colors.items():
        if code not in BY_CODE:
            raise ValueError(f"label_colors: unknown class '{code}' "
                             f"(one of {', '.join(c.code for c in LABEL_CLASSES)})")
        lc[code] = _rgb(value, f"label_colors.{code}")
    palette = d.get("review_palette", "standard")
    if palette not in REVIEW_PALETTES:
        raise ValueError(f"review_palette: '{palette}' (one of {', '.join(REVIEW_PALETTES)})")
    layout = d.get("default_layout", "axial")
    if layout not in LAYOUTS:
        raise ValueError(f"default_layout: '{layout}' (one of {', '.join(LAYOUTS)})")
    preset = d.get("default_preset", "brain")
    if preset not in WINDOW_PRESETS:
        raise ValueError(f"default_preset: '{preset}' (one of {', '.join(WINDOW_PRESETS)})")
    presets = d.get("window_presets", {})
    if not isinstance(presets, dict):
        raise ValueError("window_presets: not an object of preset -> [center, width]")
    wp = {}
    for name, cw in presets.items():
        if name not in WINDOW_PRESETS:
            raise ValueError(f"window_presets: unknown preset '{name}'")
        if (not isinstance(cw, list) or len(cw) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cw)
                or not -2000 <= cw[0] <= 5000 or not 1 <= cw[1] <= 8000):
            raise ValueError(f"window_presets.{name}: want [center, width] in HU "
                             f"(width 1..8000), got {cw!r}")
        wp[name] = (float(cw[0]), float(cw[1]))
    return Preferences(km, lc, palette, layout, preset, wp)


@dataclass
class LoadedPreferences:
    prefs: Preferences
    path: Path
    problem: str = ""  # one line naming the file, when it could not be used

    @property
    def damaged(self) -> bool:
        return bool(self.problem)


def load(path: Path) -> LoadedPreferences:
    """The preferences in `path` (missing: the defaults, no problem). Never raises for a
    damaged file: it says so in `problem` and leaves the file alone."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadedPreferences(Preferences(), path)
    except (OSError, UnicodeDecodeError) as e:
        return LoadedPreferences(Preferences(), path, _problem(path, getattr(e, "strerror", "")
                                                                 or str(e)))
    try:
        prefs = from_json(json.loads(text))
    except json.JSONDecodeError as e:
        return LoadedPreferences(Preferences(), path,
                                 _problem(path, f"not JSON ({e.msg}, line {e.lineno})"))
    except ValueError as e:
        return LoadedPreferences(Preferences(), path, _problem(path, str(e)))
    return LoadedPreferences(prefs, path)


def _problem(path: Path, why: str) -> str:
    return f"{path}: settings not used ({why}); using the defaults, the file is left as it is"


def save(prefs: Preferences, path: Path, damaged: bool = False) -> None:
    """Write atomically (temporary name, then rename). `damaged`: the file there could not be
    read; it is kept as `<name>.bad` rather than lost."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if damaged and path.exists():
            os.replace(path, path.with_name(path.name + ".bad"))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(prefs.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise IctviewError(f"{path}: could not save the settings ({e.strerror or e})") from e
