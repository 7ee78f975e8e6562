#!/usr/bin/env bash
# slurm.pl: Kaldi-compatible job runner (backend: slurm); see: utils/slurm.pl --help
#   slurm.pl [--config conf/x.conf] [--mem 4G] [--gpu N] [--num-threads N] [--max-jobs-run N] \
#          [--time T] [JOB=1:N] exp/log/name.JOB.log command args...
# Implemented in avse/jobs/ (Python standard library only), run by utils/avse_python.
exec "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/avse_python" -m avse.jobs.runner --backend slurm "$@"
