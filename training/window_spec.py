"""Which display windows feed the network, as plain data (no torch), so configs are checked
without importing torch. The windowing itself, and why these windows: ``training.windows``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ictview.errors import IctviewError


@dataclass(frozen=True)
class Window:
    name: str
    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2


WINDOW_PRESETS: dict[str, Window] = {
    w.name: w
    for w in (
        Window("brain", 40.0, 80.0),
        Window("subdural", 75.0, 215.0),
        Window("bone", 600.0, 2800.0),
        Window("stroke", 32.0, 8.0),
        Window("soft", 40.0, 380.0),
    )
}
DEFAULT_WINDOWS: tuple[Window, ...] = tuple(
    WINDOW_PRESETS[n] for n in ("brain", "subdural", "bone")
)


def resolve_windows(
    spec: Sequence[str | Mapping | Window] | None, source: str = "config"
) -> tuple[Window, ...]:
    """Config -> windows. Each item: a preset name, a {name?, center, width} table, or a Window.

    ``source`` names the file in the one-line error for a bad entry.
    """
    if spec is None:
        return DEFAULT_WINDOWS
    if isinstance(spec, (str, Mapping)) or len(spec) == 0:
        raise IctviewError(f"{source}: windows must be a non-empty list, got {spec!r}")
    out = []
    for i, item in enumerate(spec):
        if isinstance(item, Window):
            w = item
        elif isinstance(item, str):
            if item not in WINDOW_PRESETS:
                raise IctviewError(
                    f"{source}: unknown window {item!r} (presets: {', '.join(WINDOW_PRESETS)})"
                )
            w = WINDOW_PRESETS[item]
        elif isinstance(item, Mapping):
            try:
                name = str(item.get("name", f"w{i}"))
                w = Window(name, float(item["center"]), float(item["width"]))
            except (KeyError, TypeError, ValueError):
                raise IctviewError(
                    f"{source}: window {i} needs numeric 'center' and 'width', got {dict(item)!r}"
                ) from None
        else:
            raise IctviewError(f"{source}: window {i} must be a name or a table, got {item!r}")
        if not w.width > 0:
            raise IctviewError(f"{source}: window {w.name!r} needs width > 0, got {w.width}")
        out.append(w)
    return tuple(out)
