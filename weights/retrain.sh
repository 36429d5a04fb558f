#!/usr/bin/env bash
# Retrain the shipped Fashion-MNIST weights with sqnxt-train's recipe (train/train.py: crop + flip,
# cosine schedule with warm-up, 30 epochs instead of the shipped files' 5) and train the shift comparison
# networks (docs/shift.md), then measure them all into MANIFEST.json (engine and PyTorch top-1 on
# the 10,000 test images, sha256, command, time, machine, device).
#
#   bash weights/retrain.sh                      # everything, into weights/ (overwrites the files)
#   OUT=/tmp/w LIMIT=300 EPOCHS=1 bash weights/retrain.sh      # a smoke run of the whole script
#   DEVICE=cuda bash weights/retrain.sh          # on a GPU (DEVICE=auto, the default, picks it)
#
# Environment: OUT (folder, default this one), EPOCHS (dense, 30), FINETUNE_EPOCHS (pruned, 3),
# DEVICE (auto | cpu | cuda), THREADS (torch CPU threads, 1), LIMIT (first N train and test
# images only: smoke runs), MODELS (the dense models to train, default all six below).
#
# Stopped part-way (the process killed, the machine taken back)? Each model keeps its training
# state in OUT/<file>.ckpt after every epoch (sqnxt-train --checkpoint); run the script again with
# MODELS set to the models not yet written and the stopped one continues from its last finished
# epoch, ending with the weights an uninterrupted run gives on the same device and thread count.
#
# Time: about 23 h of one CPU thread for everything at 30 epochs (2.0-10.0 h per dense model,
# 0.2 h per pruned fine-tune), estimated from each model's CPU time per image-epoch measured by
# `benchmarks/recipe_ablation.py --arch MODEL --train 1000 --val 200 --epochs 1 --variants new
# --threads 1` (docs/shift.md, "The long runs", has the table), before sqnxt-train's CPU changes
# (channels-last, the shift kernel, malloc keeping freed memory) made a training step 1.3-3.2x
# faster (docs/shift.md, "Training time on the CPU"). Not measured on a GPU.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE}
EPOCHS=${EPOCHS:-30}
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-3}
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-1}
LIMIT=${LIMIT:-}
MODELS=${MODELS:-"1.0-SqNxt-23v5 1.0-SqNxt-23 ResNet-20 ShiftResNet-20-e3 ShiftResNet-20-e6 1.0-Shift-SqNxt-23v5"}
PRUNED="1.0-SqNxt-23v5 1.0-SqNxt-23"  # the shipped pruned files: 40% of every conv/fc layer

limits=()
if [[ -n $LIMIT ]]; then limits=(--limit-train "$LIMIT" --limit-test "$LIMIT"); fi
mkdir -p "$OUT"
cd "$OUT"

train() {
    sqnxt-train "$@" --device "$DEVICE" --threads "$THREADS" --float16 --force "${limits[@]}" > /dev/null
}

for model in $MODELS; do
    echo "== $model: $EPOCHS epochs" >&2
    train "$model" -o "$model-fmnist.npz" --epochs "$EPOCHS" --checkpoint "$model-fmnist.ckpt"
done
for model in $PRUNED; do
    if [[ -f $model-fmnist.npz ]]; then
        echo "== $model: pruned 40%, $FINETUNE_EPOCHS epochs of fine-tuning" >&2
        train "$model" --init "$model-fmnist.npz" --prune 0.4 --epochs "$FINETUNE_EPOCHS" --lr 0.01 \
            --warmup-steps 0 -o "$model-fmnist-pruned40.npz" --checkpoint "$model-fmnist-pruned40.ckpt"
    fi
done
python -m sqnxt_engine.train.manifest ./*-fmnist*.npz
echo "done: reinstall (pip install .) to ship the files, and update weights/README.md's table" >&2
