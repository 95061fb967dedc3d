#!/usr/bin/env bash
# The reference runs behind the README and the documentation, written to results/examples/
# (one folder per run: env.json with the commit and the machine, results.csv, curves.csv,
# summary.md, report.html, plots/).
#
#   scripts/examples.sh all         every run below, one after another, then the total time
#   scripts/examples.sh             the same
#   scripts/examples.sh seed003     only the runs whose names are given
#
# Run it on a quiet machine (nothing else running): each run's noise verdict is printed after
# it, and a run whose summary says "These figures are unreliable" is to be redone, not
# published. Each preset runs on its own backends (the seeds' own networks beside the
# frameworks; `python -m bench list` describes them). MNIST cannot be downloaded where these
# were made, so the MNIST presets (seed001, seed002, seed003) run on Fashion-MNIST (same
# shapes). Afterwards, `scripts/front-page` regenerates the README's results from the peers run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/examples
want=" $* "
[ "$want" = " all " ] && want="  "
start=$(date +%s)
made=()

wanted() { [ "$want" = "  " ] || [[ "$want" == *" $1 "* ]]; }

verdict() {  # the noise verdict of the newest run folder named *-NAME
    local dir
    dir=$(ls -d "$out"/*-"$1" 2>/dev/null | sort | tail -1)
    if [ -z "$dir" ] || [ ! -f "$dir/summary.md" ]; then
        echo "   $1: no summary.md" >&2
    elif grep -q "These figures are unreliable" "$dir/summary.md"; then
        echo "   $1: NOT QUIET ($dir/summary.md says the figures are unreliable): redo it" >&2
    else
        echo "   $1: quiet ($dir)" >&2
    fi
}

run() {  # run NAME ARGS...: python -m bench run ARGS --name NAME --out results/examples
    local name=$1 t0
    shift
    if wanted "$name"; then
        t0=$(date +%s)
        echo "== $name: python -m bench run $* --name $name --out $out --quiet" >&2
        python -m bench run "$@" --name "$name" --out "$out" --quiet
        echo "   $name took $(( $(date +%s) - t0 )) s" >&2
        verdict "$name"
        made+=("$name")
    fi
}

# "Running sweeps": the default sweep
run quick
# "Noise": a small sweep of short epochs, the cells a quiet machine still moves most
run noise-quiet --datasets digits --losses cce --backends numpy-vec,numpy-loop,torch --batch-sizes 32,256 --epochs 12 --threads 1
# "Presets": the seed notebooks, each with its own network beside the frameworks
run seed000 --preset seed000
run seed001 --preset seed001 --datasets fashion-mnist --threads 1
run seed002 --preset seed002 --datasets fashion-mnist
run seed003 --preset seed003 --datasets fashion-mnist --threads 1
run seed004 --preset seed004
run fashion --preset fashion
# "Performance": the throughput targets, the backends checked first (--verify), and scaling
run throughput --preset throughput --verify
run scaling --preset scaling
# "The peers" and the README's results: every CPU backend side by side, one thread each
run peers --preset peers --threads 1

total=$(( $(date +%s) - start ))
echo "made ${#made[@]} run(s): ${made[*]:-none}; total time $total s ($(( total / 60 )) min)" >&2
