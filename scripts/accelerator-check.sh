#!/usr/bin/env bash
# jaxconv on an accelerator, in one go: the test suite, `jaxconv bench`, the tuner (xla against Pallas for
# LeNet's calls, into OUT/tuning.json), the book recipe's 10 epochs and the LeNet step race against PyTorch (eager and torch.compile) on the same GPU. Installs nothing: the machine
# brings jax for its accelerator, flax, optax, pytest, hypothesis, matplotlib (and torch for the peer);
# jaxconv runs from this checkout (PYTHONPATH). Every result (JSON, PNG, logs) goes to one folder, and a
# summary table ends the run.
#   bash scripts/accelerator-check.sh [OUT]        OUT defaults to runs/accelerator-check
#   PYTHON=python3.12 bash scripts/accelerator-check.sh "$OUT"
# Each step has its own time limit (the limits add up to 490 s, under 8 minutes, so a run and a rerun fit in a quarter of an
# hour); a failing step is recorded and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/accelerator-check}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" JAXCONV_TUNE_MALLOC=0 MPLBACKEND=Agg
status="$out/status.txt"
: > "$status"

step() {  # step NAME SECONDS COMMAND...: runs it with a limit, logs it, records its exit status and time
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - start))" | tee -a "$status"
  tail -n 3 "$out/$name.log"
}

# QUICK=1: a dry run of the plumbing on any machine (a few tests, one small layer, one short epoch).
if [ "${QUICK:-0}" = 1 ]; then
  tests=(tests/test_export.py tests/test_corr.py) bench=(--shape 8,3,4,12,3,1 --repeats 1)
  tune=(--shape 8,3,4,12,3,1 --rounds 1)
  train=(--epochs 1 --limit-train 2048 --limit-test 1000) race=(--rounds 2 --steps 2)
else
  tests=() bench=(--repeats 5) tune=() train=() race=(--rounds 8 --steps 30)
fi

step env 20 bash -c "nvidia-smi || true; $py -c 'import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__); print(jax.devices())'; $py -c 'import torch; print(torch.__version__, torch.cuda.is_available())' || true"
step tests 200 env JAXCONV_TEST_WORKERS=0 "$py" -m pytest -q -p no:cacheprovider --junitxml="$out/tests.xml" "${tests[@]}"
step bench 90 "$py" -m jaxconv bench "${bench[@]}" --out "$out/bench"
step tune 40 "$py" -m jaxconv tune "${tune[@]}" --out "$out/tuning.json"
step train 45 "$py" -m jaxconv train --no-progress "${train[@]}" --out "$out/train"
step train-scan 45 "$py" -m jaxconv train --no-progress --steps-per-dispatch 20 "${train[@]}" --out "$out/train-scan"
step race 50 "$py" -m experiments.lenet_step_race "${race[@]}" --torch-compile --out "$out/race"

"$py" - "$out" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
print(f"\n== summary ({out})")
for line in (out / "status.txt").read_text().splitlines():
    print("  " + line)
tests = out / "tests.xml"
if tests.exists():
    import xml.etree.ElementTree as ET
    suite = ET.parse(tests).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    print("  tests: " + ", ".join(f"{k} {suite.get(k)}" for k in ("tests", "failures", "errors", "skipped")))
bench = out / "bench" / "bench.json"
if bench.exists():
    result = json.loads(bench.read_text())
    print(f"  bench on {result['device']}: fwd+bwd ms per shape and impl")
    for row in result["rows"]:
        print(f"    {row['shape']:<15} {row['impl']:<15} {row['forward_backward_ms']:9.3f} ms  vs xla "
              f"{row['speedup_vs_xla'] or 0:.2f}")
for name in ("train", "train-scan"):
    history = out / name / "history.json"
    if history.exists():
        run = json.loads(history.read_text())
        last = run["epochs"][-1]
        seconds = sum(e["epoch_seconds"] for e in run["epochs"])
        per = run["config"].get("steps_per_dispatch", 1)
        print(f"  book recipe, {len(run['epochs'])} epochs on {run['devices']}, {per} step(s) per dispatch: test acc "
              f"{last['test_acc']:.3f}, {last['images_per_second']:,.0f} img/s (last epoch), {seconds:.1f} s of "
              f"epochs, compile {run['compile_seconds']:.2f} s")
race = out / "race" / "results.json"
if race.exists():
    r = json.loads(race.read_text())
    for name, ips in r["images_per_second"].items():
        print(f"  step race: {name:<32} {ips:>12,.0f} img/s")
    for name, ratio in r["ratios"].items():
        print(f"  step race: {name}: {ratio:.2f}x")
EOF
