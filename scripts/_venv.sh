# Shared by scripts/serve and scripts/test: make .venv and install miaopi into it,
# with the extra named by the first argument, if any.
# durable-rules builds a C extension from source; gcc and the Python headers are enough.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
# A plain (non-editable) install: the code under test is what a deployment gets. setuptools
# reuses ./build, where a module no longer listed in pyproject.toml would linger: start clean.
rm -rf build
.venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
# With an argument, that extra's dependencies too (scripts/test passes "test").
.venv/bin/python -m pip install --quiet --disable-pip-version-check ".${1:+[$1]}"
