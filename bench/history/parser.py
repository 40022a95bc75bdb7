"""The grammar of `bench history add|list|show|export` (argparse only: imported by the CLI's
parser, so it stays light)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.history.metrics import METRICS

DB_HELP = "history database (default: $BENCH_HISTORY_DB or results/history.sqlite)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def add_history_parser(sub: Any) -> None:
    """`bench history` and its four subcommands."""
    history = sub.add_parser("history", help="keep runs in a database and chart a metric "
                             "across them")  # fmt: skip
    actions = history.add_subparsers(dest="history_command", required=True,
                                     metavar="{add,list,show,export}")  # fmt: skip
    add = actions.add_parser("add", help="add run folders (adding one again changes nothing)")
    add.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders to add")
    listing = actions.add_parser("list", help="the runs held, in the order added")
    show = actions.add_parser("show", help="a table and an offline HTML chart of one metric of "
                              "a model and backend across runs")  # fmt: skip
    show.add_argument("--model", required=True, help="a model name as the records give it")
    show.add_argument("--backend", required=True, help="a backend name")
    show.add_argument("--metric", default="center_us", choices=list(METRICS),
                      help="what to chart (default: %(default)s)")  # fmt: skip
    show.add_argument("--batch-size", type=_positive_int, default=None,
                      help="only cells of this batch size")  # fmt: skip
    show.add_argument("--precision", default=None, help="only cells of this precision")
    show.add_argument("--out", default=None, metavar="FILE.html", help="the chart (default: "
                      "history-<model>-<backend>-<metric>.html beside the database)")  # fmt: skip
    export = actions.add_parser("export", help="every cell of every run as CSV or Parquet")
    export.add_argument("--format", default="csv", choices=["csv", "parquet"],
                        help="(default: %(default)s; parquet needs pyarrow: the parquet extra)")  # fmt: skip
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    for action in (add, listing, show, export):
        action.add_argument("--db", default=None, metavar="PATH", help=DB_HELP)
