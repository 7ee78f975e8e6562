# Sourced by every recipe script: the toolkit's Python on PATH, C locale for sorting.
AVSE_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
export AVSE_ROOT
if [ -n "${AVSE_PYTHON:-}" ]; then
    # an interpreter chosen by the caller (tests, a user's own environment)
    PATH=$(dirname "${AVSE_PYTHON}"):$PATH
elif [ -f "${AVSE_ROOT}/tools/venv/bin/activate" ]; then
    # shellcheck disable=SC1091
    . "${AVSE_ROOT}/tools/venv/bin/activate"
else
    echo "path.sh: no virtual environment at ${AVSE_ROOT}/tools/venv; run tools/install.sh" >&2
fi
export PATH=$PWD/utils:$PATH
export LC_ALL=C
export PYTHONUNBUFFERED=1
export PYTHONPATH=${AVSE_ROOT}${PYTHONPATH:+:$PYTHONPATH}
