#!/usr/bin/env bash
# The runs behind the README's figures, written to results/examples/ (one folder per run:
# env.json with the commit and the machine, results.csv, curves.csv, summary.md, plots/).
#
#   scripts/examples.sh            every run below, one after another
#   scripts/examples.sh seed003    only the runs whose name is given
#
# MNIST cannot be downloaded where these were made, so the MNIST presets run on
# Fashion-MNIST (same shapes). Where a preset asks for many epochs over 60000 samples, the
# backends that would take hours (numpy-loop one sample at a time; Keras calling fit once per
# full-batch epoch) are left out: the README says which backends each figure comes from.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/examples
want=" $* "

run() {  # run NAME ARGS...: python -m bench run ARGS --out results/examples, if NAME is wanted
    local name=$1
    shift
    if [ "$want" = "  " ] || [[ "$want" == *" $name "* ]]; then
        echo "== $name: python -m bench run $* --out $out" >&2
        python -m bench run "$@" --out "$out" --quiet
    fi
}

# README "What a run measures" and the time accounting: the default sweep
run quick
# README "Noise": the same small sweep on a quiet machine, then with two CPU-bound programs beside it
noise=(--datasets digits --losses cce --backends numpy-vec,numpy-loop,torch --batch-sizes 32,256 --epochs 12 --threads 1)
run noise-quiet "${noise[@]}" --name noise-quiet
if [ "$want" = "  " ] || [[ "$want" == *" noise-busy "* ]]; then
    python -c 'while True: pass' & hog1=$!
    python -c 'while True: pass' & hog2=$!
    sleep 25  # let the load average see them
    run noise-busy "${noise[@]}" --name noise-busy || true
    kill "$hog1" "$hog2"
fi
# README "Presets: the seed notebooks"
run seed000 --preset seed000 --backends numpy-loop,numpy-vec,torch
run seed001 --preset seed001 --datasets fashion-mnist --backends numpy-vec,torch --threads 1 --name seed001
run seed002 --preset seed002 --datasets fashion-mnist --backends numpy-vec,torch
run seed003 --preset seed003 --datasets fashion-mnist --backends numpy-vec,torch --threads 1 --name seed003
run seed004 --preset seed004 --backends numpy-vec,torch
run fashion --preset fashion --backends numpy-vec,torch
# README "Performance": the throughput targets (timings: read the run's noise verdict)
run throughput --preset throughput --backends numpy-vec,torch --verify
# README "The peers": every CPU backend side by side, one thread each
run peers --preset peers --threads 1
