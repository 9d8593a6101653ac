#!/usr/bin/env bash
# Full-set evals of the embedded model (docs/evals.md), resumable across machines.
#
#   bash bench/evalruns/run.sh [EVAL...]    # default: mgsm mmlu gsm8k; resumes where the last run stopped
#   bash bench/evalruns/run.sh --save       # pack what is done so far (before a commit)
#   MODEL=qwen2.5-coder-0.5b-q4_k_m-raw bash bench/evalruns/run.sh humaneval   # another models.json entry,
#                                           # in bench/evalruns/EVAL-MODEL
#
# A full MMLU on a 2-core CPU takes hours, more than one sitting on a machine that does not keep its
# disk. So each run directory lives here, in the repository: samples.jsonl is worked on uncompressed
# (ignored by git) and packed into samples.jsonl.gz (committed) by --save and at the end of each eval;
# a new checkout unpacks it and `omnimini eval` resumes from it (no example is asked twice).
# The model is the embedded GGUF with the hierarchy policy off (models.json): the evals measure the
# model, as simple-evals does, not the prompt-injection defences. MODEL= picks another models.json
# entry (the installed Qwen2.5-Coder-0.5B), run in its own directory.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"     # relative paths, so that the command in each report reads the same on any machine
OMNIMINI="${OMNIMINI:-.venv/bin/omnimini}"
DATA_DIR="${DATA_DIR:-../shared/evaldata}"
DEFAULT_MODEL=smollm2-135m-q4_1-raw
MODEL="${MODEL:-$DEFAULT_MODEL}"
# 512, not simple-evals' 2048: the 135M model's repetition loops run to any cap and end in no answer
# (docs/evals.md); 24 in flight keeps the engine's continuous batching full on 2 cores.
ARGS=(--model "$MODEL" --models-file bench/evalruns/models.json --max-tokens 512 --concurrency 24)

save() {  # pack every run's samples; gzip -n keeps the archive byte-stable when nothing changed
  for d in "$HERE"/*/; do
    [ -f "$d/samples.jsonl" ] && gzip -n -c "$d/samples.jsonl" > "$d/samples.jsonl.gz.tmp" \
      && mv "$d/samples.jsonl.gz.tmp" "$d/samples.jsonl.gz"
  done
  return 0
}

if [ "${1:-}" = "--save" ]; then save; exit 0; fi
EVALS=("$@"); [ ${#EVALS[@]} -gt 0 ] || EVALS=(mgsm mmlu gsm8k)
trap save EXIT
for ev in "${EVALS[@]}"; do
  out="bench/evalruns/$ev"; [ "$MODEL" = "$DEFAULT_MODEL" ] || out="$out-$MODEL"
  mkdir -p "$out"
  if [ -f "$out/samples.jsonl.gz" ] && [ ! -f "$out/samples.jsonl" ]; then
    gunzip -c "$out/samples.jsonl.gz" > "$out/samples.jsonl"
  fi
  extra=(); [ "$ev" = humaneval ] || extra=(--data-dir "$DATA_DIR")
  "$OMNIMINI" eval "$ev" "${ARGS[@]}" "${extra[@]}" --out "$out"
  save
done
