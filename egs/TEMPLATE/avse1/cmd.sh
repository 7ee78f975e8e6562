# Job runners used by the recipe stages. Choose with cmd_backend (or AVSE_CMD_BACKEND):
#   local: run.pl runs jobs on this machine
#   sge:   queue.pl submits array jobs with qsub (options mapped by conf/queue.conf)
#   slurm: slurm.pl submits array jobs with sbatch (options mapped by conf/slurm.conf)
# Each *_cmd accepts --mem, --gpu, --num-threads, --max-jobs-run and --time.
cmd_backend=${AVSE_CMD_BACKEND:-local}

case "${cmd_backend}" in
    local)
        export train_cmd="run.pl"
        export cuda_cmd="run.pl"
        export decode_cmd="run.pl"
        ;;
    sge)
        export train_cmd="queue.pl --mem 4G"
        export cuda_cmd="queue.pl --mem 16G"
        export decode_cmd="queue.pl --mem 8G"
        ;;
    slurm)
        export train_cmd="slurm.pl --mem 4G"
        export cuda_cmd="slurm.pl --mem 16G"
        export decode_cmd="slurm.pl --mem 8G"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local, sge or slurm)" >&2
        return 1
        ;;
esac
