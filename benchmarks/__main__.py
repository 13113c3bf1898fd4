"""``python -m benchmarks``: start local federations, run the suites, write results and BENCHMARKS.md.

    python -m benchmarks --mode quick          # what `make bench-quick` runs (< 5 min on 2 cores)
    python -m benchmarks --mode full           # adds 1M persons per trust and 32 trusts
    python -m benchmarks indb                  # issue 3: in-database vs fetch-all, 100k and 1M rows
    python -m benchmarks --suite dispatch --queries 3 --trusts 1 --results-dir /tmp/r --no-markdown

BENCHMARKS.md is regenerated only by a run of every suite of a mode (or with --update-markdown).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import report, runner
from benchmarks.commands import REPO
from benchmarks.config import MODES, SUITES, with_overrides


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "suites", nargs="*", metavar="SUITE", help=f"suites to run: {', '.join(SUITES)} (default: all)"
    )
    p.add_argument("--suite", action="append", choices=SUITES, default=[], help="a suite to run (repeatable)")
    p.add_argument(
        "--mode",
        choices=sorted(MODES),
        default=None,
        help="quick (default) or full; `indb` alone defaults to full",
    )
    p.add_argument("--queries", type=int, help="queries for the dispatch and throughput suites")
    p.add_argument("--trusts", type=int, help="trusts for the dispatch, throughput and federation suites")
    p.add_argument("--repeats", type=int, help="repetitions for every repeated measurement")
    p.add_argument(
        "--persons", type=int, help="persons per trust for the small stacks (dispatch, throughput, scale)"
    )
    p.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--update-markdown", action="store_true", help="update BENCHMARKS.md even for a partial run"
    )
    g.add_argument("--no-markdown", action="store_true", help="never touch BENCHMARKS.md")
    args = p.parse_args(argv)
    for name in args.suites:
        if name not in SUITES:
            p.error(f"unknown suite {name!r} (choose from {', '.join(SUITES)})")
    for name, value in (
        ("--queries", args.queries),
        ("--trusts", args.trusts),
        ("--repeats", args.repeats),
        ("--persons", args.persons),
    ):
        if value is not None and value < 1:
            p.error(f"{name} must be at least 1")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    chosen = list(dict.fromkeys([*args.suites, *args.suite]))
    mode = args.mode or ("full" if chosen == ["indb"] and args.suites else "quick")
    suites = [s for s in SUITES if s in chosen] if chosen else list(SUITES)
    config = with_overrides(
        MODES[mode], queries=args.queries, trusts=args.trusts, repeats=args.repeats, persons=args.persons
    )
    log(f"benchmarks ({mode} mode): {', '.join(suites)}")
    results = runner.run(config, suites, log)
    path = report.results_path(args.results_dir, datetime.now(UTC))
    results["results_file"] = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    report.write_json(results, path)
    complete = set(suites) == set(SUITES)
    if args.update_markdown or (complete and not args.no_markdown):
        report.update_markdown(args.markdown, results)
        log(f"updated {args.markdown}")
    print(report.render(results))
    if "indb" in results["suites"] and results["suites"]["indb"].get("data"):
        from benchmarks.suite_indb import print_table

        print_table(results["suites"]["indb"]["data"])
    log(f"results: {path}")
    failed = [n for n, s in results["suites"].items() if s["status"] == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
