"""What both command lines (`ictview`, `ictview-train`) share: --version, -v/--verbose and
--log-file through the standard logging module.

Logging is for people diagnosing a run: warnings go to stderr by default, `-v` adds info,
`-vv` debug; `--log-file FILE` writes every record (debug and up) to FILE as well, so a
long run can be examined afterwards without cluttering the terminal. One-line error
messages for bad input are still printed by the commands themselves (the CLI contract).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ictview.errors import IctviewError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def package_version() -> str:
    """The installed distribution's version (importlib.metadata), or 'unknown' in a bare
    source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ictview")
    except PackageNotFoundError:
        return "unknown (not installed)"


def add_common_options(parser: argparse.ArgumentParser, prog: str, top: bool = True) -> None:
    """--version (top level only), -v/--verbose and --log-file.

    On subcommands the defaults are SUPPRESS, so `ictview -v info WS` and `ictview info WS -v`
    both work without the subparser resetting what the top level set."""
    if top:
        parser.add_argument("--version", action="version",
                            version=f"{prog} {package_version()}")
    kw = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("-v", "--verbose", action="count", help="more log output on stderr "
                        "(-v info, -vv debug)", **({"default": 0} if top else kw))
    parser.add_argument("--log-file", type=Path, metavar="FILE",
                        help="also write the log (debug and up) to FILE", **kw)


def setup_logging(args: argparse.Namespace) -> None:
    verbose = getattr(args, "verbose", 0) or 0
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):  # main() may run more than once in one process (tests)
        if getattr(h, "_ictview", False):
            root.removeHandler(h)
            h.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [console]
    log_file = getattr(args, "log_file", None)
    if log_file is not None:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as e:
            raise IctviewError(f"{log_file}: cannot write the log file ({e.strerror})") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers.append(fh)
    for h in handlers:
        h._ictview = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(min(h.level for h in handlers))
    # third-party chatter stays out of -vv unless it is a warning
    for noisy in ("matplotlib", "PIL", "h5py", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_command(prog: str, argv: list[str] | None) -> None:
    logging.getLogger(prog).info("%s %s (version %s)", prog,
                                 " ".join(argv if argv is not None else sys.argv[1:]),
                                 package_version())


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (counts of jobs, slices, repeats)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value
