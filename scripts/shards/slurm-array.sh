#!/usr/bin/env bash
# bench sweep in shards as a Slurm array job: array task I measures shard I of N.
# Submit the shards, then the merge once every shard has finished:
#   jobid=$(sbatch --parsable scripts/shards/slurm-array.sh)
#   sbatch --dependency=afterok:"$jobid" scripts/shards/slurm-merge.sh
# A task that was killed (preemption, time limit) and requeued finishes its own folder with
# --resume: the cells it had measured are kept, the others are measured.
#SBATCH --job-name=bench-shard
#SBATCH --array=1-3
#SBATCH --exclusive
#SBATCH --requeue
#SBATCH --output=bench-shard-%a.log
set -euo pipefail

: "${SLURM_ARRAY_TASK_ID:?run this under sbatch --array}"
shards="${SLURM_ARRAY_TASK_COUNT:-3}"
BENCH_SWEEP="${BENCH_SWEEP:---models simple_cnn,mlp --backends ort-cpu,openvino --opsets 17,18 --batch-sizes 1,8,32}"
RESULTS="${RESULTS:-results/sweep}"
out="$RESULTS/shard-$SLURM_ARRAY_TASK_ID"

if [ -f "$out/run.json" ]; then
    bench run --resume "$out" --allow-failures
else
    # shellcheck disable=SC2086  # BENCH_SWEEP is a list of flags
    bench run $BENCH_SWEEP --shard "$SLURM_ARRAY_TASK_ID/$shards" --out "$out" --allow-failures
fi
