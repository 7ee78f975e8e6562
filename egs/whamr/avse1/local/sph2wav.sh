#!/usr/bin/env bash
# Optional: convert the LDC WSJ0 discs (.wv1, NIST SPHERE with shorten compression) to
# wav with sph2pipe (from Kaldi's tools or the LDC; not part of this toolkit), keeping
# the folder layout: local/sph2wav.sh [--nj 8] <wsj0 disc root> <wav root>
# then set WSJ0=<wav root> in db.sh.
set -euo pipefail
nj=8
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "Usage: $0 [--nj N] <wsj0 root with .wv1 files> <output wav root>" >&2; exit 2; fi
src=$1 dst=$2
command -v sph2pipe > /dev/null || { echo "$0: sph2pipe not found on PATH" >&2; exit 1; }
cd "${src}"
find . \( -path '*/si_tr_s/*' -o -path '*/si_dt_05/*' -o -path '*/si_et_05/*' \) -iname '*.wv1' -print0 |
    xargs -0 -P "${nj}" -I{} sh -c 'out="$1/${2%.*}.wav"; [ -s "${out}" ] && exit 0; mkdir -p "$(dirname "${out}")" && sph2pipe -f wav "$2" "${out}.tmp" && mv "${out}.tmp" "${out}"' _ "${dst}" {}
echo "$0: wav files under ${dst}" >&2
