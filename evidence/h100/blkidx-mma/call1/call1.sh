#!/usr/bin/env bash
# Prepared in session 58, not run: branch blkidx-mma (evidence/h100/blkidx-mma/blkidx-mma.patch on main 8019bb5;
# carry/c9.tar.xz, dir nb/: graphrun, gpu_batch) against main 7dd1340's code (dir base/: graphrun), on the batched
# decode path: gpu_batch on nb, then serve at 1, 2, 4, 8 streams, 7B and 1.5B, arms base nb nb base, then nb base base nb.
# usage: bash carry/call9.sh. Carry carry/c9.tar.xz, carry/call9.sh.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c9.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
serve_run() {  # arm dir, preset, tag
  $X/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $O/serve_server_$3.log & S=$!
  for i in $(seq 60); do curl -s http://127.0.0.1:18090/health > /dev/null 2>&1 && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $O/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $O/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S 2>/dev/null
}
echo "=== gpu_batch (nb) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=$X/nb/graphrun timeout 110 $X/nb/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "^test result" $O/gpu_batch.log; pack
echo "=== serve $(date +%T) ($SECONDS s)"
for p in 7b 1.5b; do k=0; for b in base nb nb base nb base base nb; do k=$((k+1)); serve_run $b $p ${p}_${b}_$k; done; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
