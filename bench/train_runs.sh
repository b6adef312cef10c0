#!/usr/bin/env bash
# Reproduces the three training runs of docs/training.md, in order, with their exact commands:
#   1. multitask from the bundled encoder on KorSTS train + KorNLI (XNLI dev+test) + KLUE-NLI dev
#   2. unsupervised SimCSE on NSMC reviews
#   3. TSDAE on NSMC reviews
# then the in-domain check (k-NN sentiment accuracy on held-out NSMC reviews) for the base and adapted encoders.
#
# Each run writes runs/<name>/model (the model folder, with its README.md model card) and runs/<name>/log.txt.
# The step counts and time limits were sized for the 2-core shared CPU they were measured on: with a GPU or
# an idle machine, raise --max-steps / --max-minutes (or drop them and use --epochs) to train on all the data.
#
# Usage: bash bench/train_runs.sh [multitask|multitask_130|simcse|tsdae|simcse_lowlr|tsdae_lowlr|knn ...]
#        (default: multitask simcse tsdae simcse_lowlr tsdae_lowlr knn, in that order)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data
KOSEARCH=(python -m kosearch)
NSMC_LIMIT=20000   # the first 20,000 distinct reviews train SimCSE/TSDAE; k-NN samples only from the rest

run() {  # run NAME COMMAND... : log to runs/NAME/log.txt, refuse to overwrite a finished run
  local name=$1; shift
  if [[ -f runs/$name/model/modules.json ]]; then echo "runs/$name/model exists; remove it to rerun"; return; fi
  mkdir -p "runs/$name"
  echo "[$(date -u +%FT%TZ)] $name: $*" | tee "runs/$name/log.txt"
  "$@" >>"runs/$name/log.txt" 2>&1
  echo "[$(date -u +%FT%TZ)] $name finished" | tee -a "runs/$name/log.txt"
}

multitask() {
  run multitask "${KOSEARCH[@]}" train multitask \
    --nli $DATA/kornli/xnli.dev.ko.tsv --nli $DATA/kornli/xnli.test.ko.tsv --nli $DATA/klue/klue-nli-v1.1_dev.json \
    --sts $DATA/korsts/sts-train.tsv \
    --dev $DATA/korsts/sts-dev.tsv --eval-test $DATA/korsts/sts-test.tsv \
    --output runs/multitask/model \
    --epochs 1 --batch-size 16 --lr 5e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 400 --eval-steps 100 --max-minutes 35 --seed 42 \
    --freeze-embeddings --device cpu
}

multitask_130() {  # the first, shorter multitask run of docs/training.md (130 steps)
  run multitask-130 "${KOSEARCH[@]}" train multitask \
    --nli $DATA/kornli/xnli.dev.ko.tsv --nli $DATA/kornli/xnli.test.ko.tsv --nli $DATA/klue/klue-nli-v1.1_dev.json \
    --sts $DATA/korsts/sts-train.tsv \
    --dev $DATA/korsts/sts-dev.tsv --eval-test $DATA/korsts/sts-test.tsv \
    --output runs/multitask-130/model \
    --epochs 1 --batch-size 16 --lr 5e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 130 --eval-steps 65 --max-minutes 35 --seed 42 \
    --freeze-embeddings --device cpu
}

simcse() {
  run simcse "${KOSEARCH[@]}" train simcse \
    --sentences $DATA/nsmc/nsmc_reviews.tsv.gz --column review --limit $NSMC_LIMIT \
    --eval-test $DATA/korsts/sts-test.tsv --skip-base-eval \
    --output runs/simcse/model \
    --batch-size 32 --lr 3e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 60 --max-minutes 10 --seed 42 \
    --freeze-embeddings --device cpu
}

tsdae() {
  run tsdae "${KOSEARCH[@]}" train tsdae \
    --sentences $DATA/nsmc/nsmc_reviews.tsv.gz --column review --limit $NSMC_LIMIT --deletion-ratio 0.6 \
    --eval-test $DATA/korsts/sts-test.tsv --skip-base-eval \
    --output runs/tsdae/model \
    --batch-size 8 --lr 3e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 120 --max-minutes 10 --seed 42 \
    --freeze-embeddings --device cpu
}

# Second attempt at the unsupervised recipes, after the first (above) lowered KorSTS and k-NN accuracy: a 3x lower
# learning rate (the base is already a trained embedding model, not raw BERT as in the papers) and ~10 minutes each.
simcse_lowlr() {
  run simcse-lowlr "${KOSEARCH[@]}" train simcse \
    --sentences $DATA/nsmc/nsmc_reviews.tsv.gz --column review --limit $NSMC_LIMIT \
    --eval-test $DATA/korsts/sts-test.tsv --skip-base-eval \
    --output runs/simcse-lowlr/model \
    --batch-size 64 --lr 1e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 60 --max-minutes 12 --seed 42 \
    --freeze-embeddings --device cpu
}

tsdae_lowlr() {
  run tsdae-lowlr "${KOSEARCH[@]}" train tsdae \
    --sentences $DATA/nsmc/nsmc_reviews.tsv.gz --column review --limit $NSMC_LIMIT --deletion-ratio 0.6 \
    --eval-test $DATA/korsts/sts-test.tsv --skip-base-eval \
    --output runs/tsdae-lowlr/model \
    --batch-size 8 --lr 1e-5 --warmup-ratio 0.1 --max-seq-length 64 \
    --max-steps 200 --max-minutes 12 --seed 42 \
    --freeze-embeddings --device cpu
}

knn() {
  mkdir -p runs/knn
  local models=(base=bundled)
  for name in simcse tsdae simcse-lowlr tsdae-lowlr multitask; do
    [[ -f runs/$name/model/modules.json ]] && models+=("$name=runs/$name/model")
  done
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python bench/knn_sentiment.py --exclude-first $NSMC_LIMIT --train 2000 --test 1000 --k 10 \
    --out runs/knn/knn.json "${models[@]}" 2>&1 | tee runs/knn/log.txt
}

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(multitask simcse tsdae simcse_lowlr tsdae_lowlr knn)
for step in "${steps[@]}"; do "$step"; done
