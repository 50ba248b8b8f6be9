"""The `lowbit` command: argument parsing and dispatch to info, check and
bench (info.py, check.py, bench.py) over every installed lowbit kernel
package (see README.md of lowbit-kernels)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from pathlib import Path

from lowbit.testing.shapes import MODELS

from . import __version__
from ._common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE
from ._env import UserError

DEFAULT_BENCH_OUT = "lowbit-bench"

MAIN_HELP = """\
lowbit: what your lowbit installation contains and how fast it is.

  lowbit info     versions, compiled architectures, which op runs on this device
  lowbit check    run every op against the pure-torch reference (exit 1 on failure)
  lowbit bench    benchmark every op with its baselines; tables, JSON/CSV, plots

Run 'lowbit COMMAND --help' for a command's options.
"""


class _Parser(argparse.ArgumentParser):
    # One clear line instead of argparse's usage dump.
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lowbit", description=MAIN_HELP, usage="lowbit [--version] COMMAND [options]",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lowbit-kernels {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, prog="lowbit")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", metavar="DEV",
                        help="cpu, cuda or cuda:N (default: cuda when a GPU is visible, else cpu)")
    common.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout instead of tables")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="print full tracebacks of package errors")
    pkg = argparse.ArgumentParser(add_help=False)
    pkg.add_argument("-p", "--package", action="append", metavar="NAME",
                     help="only this package (nvfp4_quant, nvfp4-mm, lowbit-w4a8-mm, ...); "
                          "repeat or comma-separate for several (default: every installed one)")

    sub.add_parser(
        "info", parents=[common], help="versions, architectures and where each op runs",
        description="Show torch/CUDA versions, every lowbit package with the CUDA architectures "
                    "it was compiled for, the device, and per op which targets (CPU, SM90, SM100, "
                    "SM120) have a kernel and whether it runs on this device.")
    check = sub.add_parser(
        "check", parents=[common, pkg], help="run every op against the reference",
        description="Run every op of every installed package on the device, on an embedded "
                    "realistic problem with random data, and compare with the pure-torch "
                    "reference. Exit status 1 when any check fails or an installed package "
                    "does not import.")
    check.add_argument("--out", metavar="DIR", type=Path,
                       help="also write check.md and check.json into DIR")
    _add_bench(sub, [common, pkg])
    p.subcommands = sub.choices  # name -> parser, for errors worded per command
    return p


def _add_bench(sub, parents) -> None:
    bench = sub.add_parser(
        "bench", parents=parents, help="benchmark every op with its baselines",
        description=textwrap.fill("Benchmark every op of the installed packages against their baselines "
                    "(CUDA-graph replay timed with CUDA events, warm-up, median, rotating inputs "
                    "larger than L2). Prints tables and writes bench.md, bench.json, "
                    "bench.csv and one PNG plot per op into --out. On CPU it runs the CPU kernels on small "
                    "shapes.", 79),
        epilog="examples:\n"
               "  lowbit bench --quick                         a first look (fewer token counts)\n"
               "  lowbit bench --shapes llama3-8b -p nvfp4_mm  one model, one package\n"
               "  lowbit bench --out perf/kernels/bench        a full run into a folder",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--shapes", "--models", action="append", metavar="MODEL", dest="shapes",
                       help=f"only the layer shapes of these models ({', '.join(MODELS)}; "
                            "case and punctuation do not matter); repeat or comma-separate")
    bench.add_argument("--quick", action="store_true", help="fewer token counts M per shape")
    bench.add_argument("--out", metavar="DIR", type=Path, default=Path(DEFAULT_BENCH_OUT),
                       help="write bench.md, bench.json, bench.csv and PNG plots into DIR "
                            f"(default: ./{DEFAULT_BENCH_OUT})")
    bench.add_argument("--no-files", action="store_true", help="print only; write no files")
    bench.add_argument("--merge", action="store_true",
                       help="keep the other packages' results already in DIR/bench.json "
                            "(benchmark one package per command, same --out)")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def main(argv: list[str] | None = None) -> int:
    """Entry point; the families come from _families.family_specs()."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = parser.subcommands.get(args.command, parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv
    # A time limit's SIGTERM ends the run like Ctrl-C: bench still writes what it measured.
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        return _command(args.command)(args)
    except UserError as e:
        print(f"lowbit {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lowbit info | head`: stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _command(name: str):
    """The subcommand's function, imported on demand (`lowbit --help` stays fast)."""
    if name == "info":
        from .info import cmd_info

        return cmd_info
    if name == "check":
        from .check import cmd_check

        return cmd_check
    from .bench import cmd_bench

    return cmd_bench


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
