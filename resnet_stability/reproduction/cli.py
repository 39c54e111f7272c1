"""The reproduction of Zhang & Wynter, as data: every experiment, the command that
regenerates it, and the writer of REPRODUCTION.md.

``python -m resnet_stability.reproduction run [NAME ...]`` runs experiments (all by
default) into ``reproduction/`` (:mod:`resnet_stability.reproduction.run`); finished
cells are skipped, so a run that stops resumes.
``python -m resnet_stability.reproduction write`` recomputes the claims
(:mod:`resnet_stability.reproduction.claims`) from the committed tables and writes
``reproduction/claims.csv``, ``reproduction/claims_parts.csv`` and ``REPRODUCTION.md``
(:mod:`resnet_stability.reproduction.document`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from resnet_stability.reproduction.run import ROOT, SWEEPS, run_propagation, run_sweep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_stability.reproduction", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run experiments (all by default); finished cells are skipped")
    run.add_argument("names", nargs="*", help=f"any of: {', '.join([*SWEEPS, 'propagation'])}")
    run.add_argument("--root", type=Path, default=ROOT)
    write = sub.add_parser("write", help="recompute the claims and write REPRODUCTION.md")
    write.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.command == "run":
        names = args.names or [*SWEEPS, "propagation"]
        unknown = [n for n in names if n not in SWEEPS and n != "propagation"]
        if unknown:
            parser.error(f"unknown experiment(s) {', '.join(unknown)}; allowed: {', '.join([*SWEEPS, 'propagation'])}")
        for name in names:
            if name == "propagation":
                run_propagation(args.root)
            elif run_sweep(name, args.root) != 0:
                return 1
        return 0
    from resnet_stability.reproduction.document import write_reproduction

    write_reproduction(args.root)
    return 0
