# Sourced by recipes. Defines:
#   run_jobs <name> <nj> <keys file> <out dir> <runner> -- <python command...>
# Splits the keys into at most <nj> parts, runs the command as
#   <runner> JOB=1:N <out dir>/log/<name>.JOB.log <command> --key_file ... --job JOB
# then once more with --merge true. A finished out dir (with .done) is skipped;
# the command itself resumes per utterance, so a re-run after a failure is cheap.
run_jobs() {
    local name=$1 n=$2 keys=$3 out=$4 runner=$5
    shift 6
    if [ -f "${out}/.done" ]; then
        echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_jobs) ${out} is complete, skipping" >&2
        return 0
    fi
    local logdir=${out}/log
    mkdir -p "${logdir}"
    local total
    total=$(wc -l < "${keys}")
    [ "${total}" -gt 0 ] || { echo "run_jobs: ${keys} is empty" >&2; return 1; }
    [ "${n}" -gt "${total}" ] && n=${total}
    local parts=() j
    for j in $(seq "${n}"); do parts+=("${logdir}/keys.${j}"); done
    utils/split_scp.pl "${keys}" "${parts[@]}"
    ${runner} JOB=1:"${n}" "${logdir}/${name}.JOB.log" \
        "$@" --key_file "${logdir}/keys.JOB" --job JOB --progress false
    "$@" --merge true
}
