#!/usr/bin/env bash
# merge-prep-batch call 2 (call 1 trimmed to fit 600 s of device budget: no llama.cpp; call 1 never started): the deferred attention merge in batched decode steps too (branch merge-prep-batch at the barrier fix,
# carry/mb.tar.xz, dir mb/: graphrun, gpu_batch), against main's behaviour (carry/ag.tar.xz, dir ag/: main
# 22db7be + att-geom's knobs, left unset here, so main's code path). Carry exactly carry/mb.tar.xz,
# carry/ag.tar.xz.
# (1) gpu_batch on the branch (batched rows bit-identical to each sequence alone, now both deferred);
# (2) serve 1, 2, 4, 8 streams, 1.5B and 7B, base new new base (short prompts: few splits, a no-regression
# check).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mb ag; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/mb/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== gpu_batch (new) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=/tmp/x/mb/graphrun timeout 120 /tmp/x/mb/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_batch.log; pack
serve_run() {  # arm dir, preset, tag
  /tmp/x/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $O/serve_server_$3.log & S=$!
  for i in $(seq 60); do curl -s http://127.0.0.1:18090/health > /dev/null 2>&1 && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $O/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $O/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S 2>/dev/null
}
echo "=== serve A/B $(date +%T) ($SECONDS s)"
for p in 1.5b 7b; do serve_run ag $p ${p}_base1; serve_run mb $p ${p}_new1; serve_run mb $p ${p}_new2; serve_run ag $p ${p}_base2; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
