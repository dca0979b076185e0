#!/bin/bash
# The CPU speed comparison of the README: the PyTorch yardstick and the criterion benches of
# `tiny` (one 256² pair; one training step on 4 crops of 96²), alternating, three rounds, in one
# sitting. Needs torch (pip) and ../shared/perf/torch_ref.py; quote the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
yardstick="${DUALMINE_YARDSTICK:-../shared/perf/torch_ref.py}"
cargo bench --no-run --bench fuse
for round in 1 2 3; do
  echo "== round $round: PyTorch"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$yardstick" --config tiny --threads 2
  for group in pair train; do
    echo "== round $round: dualmine $group"
    DUALMINE_BENCH_CPU=1 DUALMINE_BENCH=$group cargo bench --bench fuse -- 'tiny/flex' 2>&1 |
      grep -E "^(fuse|train)|time:"
  done
done
