#!/bin/sh
# Rebuilds the shipped W-DUALMINE weights from nothing and scores them (issue 16).
#
#   sh assets/train.sh [OUT]        (from the repository root, ../shared/data beside it)
#
# Writes OUT/wdualmine-tiny-local-{ct-mri,pet-mri,spect-mri,pet-ct}.bpk (default OUT:
# runs/recipe), the validation tables (OUT/validation.md), the test tables (OUT/test.md) and
# the PET–CT table on STS_002 (OUT/pet-ct.md). Copy the four files into assets/ to ship them.
# Every choice below (steps, λ, detail gains, the local parts) was made on the validation
# split (assets/validation-split.txt; STS_002 for PET–CT); see assets/MODEL_CARD.md.
# DUALMINE may name the binary (default: the release build of this checkout).
set -eu
OUT=${1:-runs/recipe}
DATA=${DATA:-../shared/data}
if [ -z "${DUALMINE:-}" ]; then
    cargo build --release --quiet
    DUALMINE=${CARGO_TARGET_DIR:-target}/release/dualmine
fi
mkdir -p "$OUT"

# Stage 1: one network for the three tasks, from scratch, on 128² crops (flips and 90°
# rotations), λ = avg, grad, cc, mi, rec, rel.
"$DUALMINE" train --task all --data "$DATA/aanlib" -o "$OUT/stage1.bpk" \
    --checkpoint "$OUT/stage1" --steps 500 --batch 4 --crop 128 --lr 1e-3 --warmup 50 \
    --lambda 1,10,1,0.1,1,2 --gradient-target 0.7 --detail-gain 0.1 --seed 0

# Stage 2: per task, on whole 256² images (the decoder's gains are per image), each with its
# detail gain γ, λ_grad and gradient target chosen on the validation split (model card).
stage2() {
    task=$1
    gain=$2
    lambda=$3
    target=$4
    "$DUALMINE" train --task "$task" --data "$DATA/aanlib" --init "$OUT/stage1.bpk" \
        -o "$OUT/wdualmine-tiny-$task.bpk" --checkpoint "$OUT/$task" --steps 60 --batch 2 \
        --crop 256 --lr 5e-4 --warmup 5 --lambda "$lambda" --gradient-target "$target" \
        --detail-gain "$gain" --seed 0
}
stage2 ct-mri 0.5 1,10,100,1,1,2 0.7
stage2 pet-mri 0.08 1,12,100,3,1,2 0.8
stage2 spect-mri 0.15 1,15,100,1,1,2 0.78

# PET–CT: from stage 1, on the 128² crops of STS_001's CT and PET slices (CT in its soft-
# tissue window, PET from 0 to its 99.5th percentile SUV); STS_002 is held out. Three fine-tunes
# (seeds 0, 1, 2) averaged weight by weight: one seed's MI on STS_002 varied more than its
# margin over GFF (model card, "PET–CT").
for seed in 0 1 2; do
    "$DUALMINE" train --task pet-ct --studies "$DATA/dicom/sts/STS_001" --init "$OUT/stage1.bpk" \
        -o "$OUT/pet-ct-seed$seed.bpk" --checkpoint "$OUT/pet-ct-seed$seed" --steps 150 \
        --batch 4 --crop 128 --lr 5e-4 --warmup 10 --lambda 1,10,100,5,1,2 \
        --gradient-target 0.7 --detail-gain 0.03 --seed "$seed"
done
"$DUALMINE" average-weights -o "$OUT/wdualmine-tiny-pet-ct.bpk" "$OUT/pet-ct-seed0.bpk" \
    "$OUT/pet-ct-seed1.bpk" "$OUT/pet-ct-seed2.bpk"

# The local part the detail control steers (issue 36): k, τ, c per scale and the fade u,
# chosen on the validation split with `eval --split validation --local … --detail 1`
# (model card, "Detail control"). For CT–MRI the start of stage 3.
setlocal() {
    "$DUALMINE" set-local "$OUT/wdualmine-tiny-$1.bpk" --local "$2" -o "$3"
}
setlocal ct-mri "0,0.5,0;4,50,4;0,0,0;1" "$OUT/local-ct-mri.bpk"
setlocal pet-mri "0,0.8,0;4,50,4;0,0,0;1" "$OUT/wdualmine-tiny-local-pet-mri.bpk"
setlocal spect-mri "0.4,0.4,0.4;50,50,50;0,0,0;1" "$OUT/wdualmine-tiny-local-spect-mri.bpk"
setlocal pet-ct "0,0.8,0;4,50,4;0,0,0;1" "$OUT/wdualmine-tiny-local-pet-ct.bpk"

# Stage 3, CT–MRI: the whole network with its local part, each step scored at both ends of
# the detail control — at d = 0 with the stage-2 loss, at d = 1 with L_grad, L_cc, L_mi and
# L_ssim (λ 0,10,1,1,0,0,2) — so that the maps, the mixer and the decoder's full-size features
# (the learned lean) are trained for what the local part does with them. On the other tasks the
# same stage lowered the locality at d = 1 (model card), so their models end at set-local.
"$DUALMINE" train --task ct-mri --data "$DATA/aanlib" --config tiny-local \
    --init "$OUT/local-ct-mri.bpk" -o "$OUT/wdualmine-tiny-local-ct-mri.bpk" \
    --checkpoint "$OUT/ct-mri-detail" --steps 150 --batch 2 --crop 256 --lr 5e-4 --warmup 5 \
    --lambda 1,10,100,1,1,2 --detail 1 --detail-lambda 0,10,1,1,0,0,2 --gradient-target 0.7 \
    --detail-gain 0.5 --seed 0

"$DUALMINE" eval --task all --data "$DATA" --weights "$OUT" --backend cpu --split validation \
    --no-fmi > "$OUT/validation.md"
"$DUALMINE" eval --task all --data "$DATA" --weights "$OUT" --backend cpu \
    --csv "$OUT/test.csv" --figure "$OUT/figure.png" > "$OUT/test.md"
"$DUALMINE" eval --task pet-ct --studies "$DATA/dicom/sts/STS_002" --weights "$OUT" \
    --backend cpu --no-fmi > "$OUT/pet-ct.md"
echo "weights, tables and figure in $OUT"
