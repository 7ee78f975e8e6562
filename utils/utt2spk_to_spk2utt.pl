#!/usr/bin/env bash
# Data-dir helper; see: utils/utt2spk_to_spk2utt.pl --help  (implemented in avse/bin/datadir.py)
exec "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/avse_python" -m avse.bin.datadir spk2utt "$@"
