"""Errors that reach the user as one line naming the file and the problem."""


class IctviewError(Exception):
    """A problem with the user's input or workspace; the CLI prints it as one line."""
