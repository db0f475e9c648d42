"""The classroom's commands, ``python -m gptlib figures``, ``doctor`` and ``progress``.

``gptlib.__main__`` adds them to the GPT's command line (``gptlib.cli``), which never imports the classroom.
"""
from __future__ import annotations

import argparse


def add_figures_command(subparsers) -> None:
    p = subparsers.add_parser("figures", help="regenerate the course's figures (PNG) from gptlib",
                              description="Draw the course's figures from gptlib and day 5's model "
                                          "(trained first if its checkpoint is missing).")
    p.add_argument("--out", default="figures", help="folder for the PNG files (default: figures)")
    p.add_argument("--checkpoint-dir", default=None, help="where the runs live (default: checkpoints/)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    p.set_defaults(func=run_figures)


def run_figures(args: argparse.Namespace) -> int:
    from .figures import make_figures

    for path in make_figures(args.out, args.checkpoint_dir, args.device):
        print(path)
    return 0


def add_doctor_command(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check that this machine is ready for the course",
                              description="Python, torch, device, data files, fonts, checkpoints, disk: "
                                          "one line each, with the fix when something would break a notebook.")
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor as doctor

    return doctor()


def add_progress_command(subparsers) -> None:
    p = subparsers.add_parser("progress", help="list the exercises with their state, difficulty and time",
                              description="Every exercise (or one day's) with its state (not started / not "
                                          "passed yet / passed), kept in $GPTLIB_WORKSPACE/progress.json by check().")
    p.add_argument("--day", type=int, default=None, help="only this day's exercises (1-8)")
    p.add_argument("--lang", choices=("en", "zh"), default=None, help="language (default: $GPTLIB_LANG or en)")
    p.set_defaults(func=run_progress)


def run_progress(args: argparse.Namespace) -> int:
    from .exercises import set_language
    from .exercises.progress import FILE_NAME, progress_file, progress_lines
    from .notebook import answers_dir

    if args.lang:
        set_language(args.lang)
    # a terminal of the learner's own has no GPTLIB_WORKSPACE: read the folder course.py lab gives the kernel
    print("\n".join(progress_lines(args.day, progress_file() or answers_dir() / FILE_NAME)))
    return 0


COMMANDS = (add_figures_command, add_doctor_command, add_progress_command)
