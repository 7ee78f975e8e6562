#!/usr/bin/env bash
# Data-dir helper; see: utils/fix_data_dir.sh --help  (implemented in avse/bin/datadir.py)
exec "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/avse_python" -m avse.bin.datadir fix "$@"
