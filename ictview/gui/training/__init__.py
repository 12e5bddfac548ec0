"""The training launcher: runs ictview-train as child processes and shows their progress;
the demo's background training chained through it."""
