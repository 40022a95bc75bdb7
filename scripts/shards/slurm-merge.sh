#!/usr/bin/env bash
# Joins the shards of slurm-array.sh into one run folder; submit it with
#   sbatch --dependency=afterok:<the array job's id> scripts/shards/slurm-merge.sh
#SBATCH --job-name=bench-merge
#SBATCH --output=bench-merge.log
set -euo pipefail

RESULTS="${RESULTS:-results/sweep}"
bench merge "$RESULTS"/shard-* --out "$RESULTS/merged"
