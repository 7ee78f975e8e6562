#!/usr/bin/env bash
# Idempotent installer: a virtual environment inside the repository (tools/venv),
# torch first (CPU build where no CUDA is present; an installed torch is never
# replaced), then avse in editable mode with the given extras.
#
#   bash tools/install.sh            # runtime dependencies
#   bash tools/install.sh test       # plus the test extra
#   bash tools/install.sh test,kaldi # several extras
#   bash tools/install.sh face       # dlib + 68-point landmarks for lip_backend landmarks
#                                    # (~105 MB; the landmark model is non-commercial)
#
# Environment: PYTHON (interpreter for the venv, default python3), AVSE_VENV (venv
# path, default tools/venv), TORCH_SPEC (pip requirement for torch, default torch),
# TORCH_CPU_INDEX (index holding CPU-only torch builds, tried when no GPU is seen).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-}
venv=${AVSE_VENV:-$root/tools/venv}
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch}
torch_cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

log() { echo "[install.sh] $*" >&2; }

"$python" - <<'PY' || { log "Python >= 3.10 is required (PYTHON=$python)"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check)

# Fast path: the same setup.py and extras were installed before and still import.
stamp="$venv/.avse_install_stamp"
want="$(cat "$root/setup.py" | sha256sum | cut -d' ' -f1) extras=$extras root=$root"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$py" -c "import torch, avse" >/dev/null 2>&1; then
  log "up to date ($venv)"
  exit 0
fi

if "$py" -c "import torch" >/dev/null 2>&1; then
  log "keeping installed torch $("$py" -c 'import torch; print(torch.__version__)')"
else
  # 1) a wheel the site provides locally (pip's find-links / wheelhouse);
  # 2) no GPU: the CPU-only index (small download, no CUDA libraries);
  # 3) the default index.
  if "${pip[@]}" install -q --no-index --no-deps "$torch_spec" >/dev/null 2>&1; then
    log "installed torch from a local wheel"
  elif ! command -v nvidia-smi >/dev/null 2>&1 \
       && "${pip[@]}" install -q --timeout 30 --retries 1 --index-url "$torch_cpu_index" "$torch_spec"; then
    log "installed CPU-only torch"
  else
    "${pip[@]}" install -q "$torch_spec"
  fi
  # the dependencies of torch (torch itself is already satisfied and stays)
  "${pip[@]}" install -q "$torch_spec"
fi

target="$root"
[ -n "$extras" ] && target="$root[$extras]"
log "installing avse (editable) ${extras:+with extras $extras}"
"${pip[@]}" install -q -e "$target"
"$py" -c "import torch, avse; print('[install.sh] avse', avse.__version__, 'torch', torch.__version__)" >&2
echo "$want" > "$stamp"
