# Shared by scripts/serve, scripts/test and scripts/bench: make .venv and install miaopi into it,
# with the extra named by the first argument, if any.
# durable-rules builds a C extension from source; gcc and the Python headers are enough.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter .venv is made from: $PYTHON if set; else the distribution's CPython, when it is
# 3.11 or newer, can make a virtual environment and has its headers (durable-rules compiles
# against them); else python3 from the PATH. A distribution builds CPython with profile-guided
# and link-time optimization (Debian's /usr/bin/python3.11 into one executable), as the Docker
# image's python:3.11-slim is built. A build from source with a version manager's defaults
# (pyenv's: neither optimization, a shared libpython) executed a tenth more instructions per
# decision on this project's machine, for about a tenth more CPU (bench/HISTORY.md).
choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
  elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'if True:
      import ensurepip, os, sys, sysconfig
      ensurepip.version()
      headers = os.path.join(sysconfig.get_paths()["include"], "Python.h")
      sys.exit(sys.version_info < (3, 11) or not os.path.exists(headers))' 2>/dev/null; then
    echo /usr/bin/python3
  else
    echo python3
  fi
}

# The interpreter .venv was made from, resolved (empty if its pyvenv.cfg does not say).
made_from() {
  local exe
  exe="$(sed -n 's/^executable = //p' .venv/pyvenv.cfg 2>/dev/null || true)"
  if [ -n "$exe" ]; then
    realpath -- "$exe" 2>/dev/null || true
  fi
}

PYTHON="$(choose_python)"
chosen="$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
before="$(made_from)"
if [ -x .venv/bin/python ] && [ -n "$before" ] && [ "$before" != "$chosen" ]; then
  echo "remaking .venv from $chosen (it was made from $before)" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# What an install is made from: when none of it changed since the last install into this .venv/
# (with the extra asked for, or with "test", which has every dependency), the install is skipped,
# so a restart of scripts/serve takes a second, not a reinstall.
stamp="$({ "$PYTHON" --version;
           find pyproject.toml src adapters rules -type f -not -path '*/__pycache__/*' \
             -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)"
read -r installed installed_extra 2>/dev/null < .venv/.miaopi-installed || true
if [ "${installed:-}" = "$stamp" ] && { [ "${installed_extra:-}" = "${1:-}" ] || [ "${installed_extra:-}" = test ]; }; then
  return 0 2>/dev/null || exit 0
fi
rm -f .venv/.miaopi-installed
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
# A plain (non-editable) install: the code under test is what a deployment gets. setuptools
# reuses ./build, where a module no longer listed in pyproject.toml would linger: start clean.
rm -rf build
.venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
rm -rf build
# With an argument, that extra's dependencies too (scripts/test passes "test").
.venv/bin/python -m pip install --quiet --disable-pip-version-check ".${1:+[$1]}"
echo "$stamp ${1:-}" > .venv/.miaopi-installed
