#!/usr/bin/env bash
# Unix shorthand for course.py, which does the work (the same on Windows, macOS and Linux):
#   ./course.sh lab [--zh] [args]   set up, then open day 1 of your own copy (my-course/) in JupyterLab;
#                                   stop it with Ctrl-C twice
#   ./course.sh test [args]         set up, then run the whole test suite (pytest + nbval on every notebook)
#   ./course.sh setup               set up only
# PYTHON picks the interpreter that makes .venv (default python3), e.g. PYTHON=python3.12 ./course.sh lab
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python3}" course.py "$@"
