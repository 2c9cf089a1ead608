#!/usr/bin/env bash
# Call 1 (H200): vA = a batched greedy step takes the argmax of its b rows in one launch (a
# grid layer and a scratch area a row) where it launched the argmax once a row; vB = vA +
# the batched matvecs prefetch their first weights into L2 before the wait for the kernel
# before (tiles: the CTA's first tile; whole rows: each warp's first rows). Against base =
# d88bd13 (main), same call: gpu_batch on vB (all but the timing test, with the new
# batched-greedy test); serve 1, 2, 4, 8 streams on 7B and 1.5B, three rounds in the order
# base vA vB | vB vA base | base vA vB.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/vB/graphrun timeout 300 /tmp/ab/vB/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_vB.log 2>&1
rc=$?; echo "gpu_batch vB: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|compared\|batched greedy" $OUT/gpu_batch_vB.log | head -12
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  for v in base vA vB; do serve_run $v $p ${p}_${v}1; done
  for v in vB vA base; do serve_run $v $p ${p}_${v}2; done
  for v in base vA vB; do serve_run $v $p ${p}_${v}3; done
done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
