"""`ictview next`: the exams a rater should label next (ictview/study/active_learning.py)."""

from __future__ import annotations

import json
from pathlib import Path

ROLES = ("labeled", "unlabeled", "validation", "test")


def add_next_parser(sub) -> None:
    from ictview.study.active_learning import MEASURES, STRATEGIES

    p = sub.add_parser(
        "next", help="active-learning queue: the exams to label next, from a run's predictions",
        description="Ranks the exams by a score read from the stored predictions (uncertainty: "
        "mean binary entropy inside the brain; disagreement: 1 - Dice between two runs; random: "
        "seeded). Exams the rater already labeled and exams of an unfinished test-retest study "
        "are never served.")
    p.add_argument("workspace", type=Path)
    p.add_argument("--run", required=True, help="the run whose predictions rank the exams")
    p.add_argument("--against", metavar="RUN2", help="second run (strategy disagreement)")
    p.add_argument("--strategy", choices=STRATEGIES, default="uncertainty")
    p.add_argument("--measure", choices=MEASURES, default="pixel",
                   help="pixel maps (default) or exam scores vs the operating threshold")
    p.add_argument("--role", choices=ROLES, action="append",
                   help="serve exams of this role (repeatable; default labeled and unlabeled)")
    p.add_argument("--n", type=int, default=1, help="how many exams (default 1)")
    p.add_argument("--rater", help="the rater (default: your login)")
    p.add_argument("--labelset", help="the rater's labelset (default rater-<rater>)")
    p.add_argument("--seed", type=int, default=0, help="random strategy's seed")
    p.add_argument("--json", action="store_true", help="print the queue as JSON")


def cmd_next(args) -> int:
    from ictview.core.annotation import rater_labelset
    from ictview.store.workspace import Workspace
    from ictview.study.active_learning import next_exams

    with Workspace.open(args.workspace) as ws:
        rater = args.rater or ws.login
        q = next_exams(ws, args.run, args.strategy, against=args.against,
                       roles=tuple(args.role or ()), n=args.n, rater=rater,
                       labelset=args.labelset or rater_labelset(rater), measure=args.measure,
                       seed=args.seed)
    if args.json:
        print(json.dumps(q.to_dict(), indent=1))
        return 0
    for i, s in enumerate(q.served, 1):
        print(f"{i:>3}  {s.exam:<24} {s.score:>9.4f}  {s.site} ({s.role})")
    ex = q.excluded
    print(f"{len(q.served)} served ({q.strategy}, {q.measure}); not served: "
          f"{ex['labeled_by_rater']} labeled by the rater, {ex['in_unfinished_study']} in an "
          f"unfinished test-retest study, {ex['not_predicted']} without a prediction")
    return 0
