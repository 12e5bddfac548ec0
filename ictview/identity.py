"""Who is using ictview: the OS login, the only identity that guards access.

Typed rater names ("dr-lee") are display names of labelsets; they decide nothing
about who may see what. Everything that guards access (blinding, administrator
actions, the audit actor) asks `current_login()`.

The login is the name of the process's real user id in the password database,
not `$USER`/`$LOGNAME`: `getpass.getuser()` reads those environment variables
first, so `USER=admin ictview ...` would be a typed name again. Only where the
uid has no passwd entry (some containers) does it fall back to getpass.

Tests inject another login by monkeypatching `ictview.identity.current_login`
(every caller looks it up at call time) or by giving `Workspace.open(..., login=)`.
"""

from __future__ import annotations

import getpass
import os

UNKNOWN_LOGIN = "unknown"


def current_login() -> str:
    """The OS login of this process (see the module doc)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):  # Windows, or a uid without a passwd entry
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return UNKNOWN_LOGIN


def same_rater(a: str | None, b: str | None) -> bool:
    """Typed rater (display) names are equal case-folded and trimmed: 'Dr-Lee ' == 'dr-lee'."""
    return rater_key(a) == rater_key(b) and bool(rater_key(a))


def rater_key(name: str | None) -> str:
    return (name or "").strip().casefold()
