#!/usr/bin/env bash
# run.pl: Kaldi-compatible job runner (backend: local); see: utils/run.pl --help
#   run.pl [--config conf/x.conf] [--mem 4G] [--gpu N] [--num-threads N] [--max-jobs-run N] \
#          [--time T] [JOB=1:N] exp/log/name.JOB.log command args...
# Implemented in avse/jobs/ (Python standard library only).  Interpreter: $AVSE_PYTHON,
# else the repository's tools/venv, else python3; works through a recipe's utils symlink.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
if [ -n "${AVSE_PYTHON:-}" ]; then py=$AVSE_PYTHON
elif [ -x "$root/tools/venv/bin/python" ]; then py=$root/tools/venv/bin/python
else py=python3; fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m avse.jobs.runner --backend local "$@"
