#!/usr/bin/env bash
# device call 4 of 2026-12-02 (third session): base = 6f5c696's binary (its serve samples on the host, as 905b15d's does),
# new = working tree: `serve`'s batched steps sample on the device too (BatchEngine::decode_sample, the sample kernel
# over a row per grid row). Parity: gpu_sample, gpu_batch (incl. batched_sampling_picks_the_host_samplers_tokens).
# Speed: servebench on the synthetic 1.5B, greedy and sampled (temperature 0.7, the server's default top-k 40 and
# top-p 0.95), new and base.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* gpu_sample gpu_batch; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; $G synth --preset 1.5b -o /tmp/gr/1.5b.gguf 2>&1 | tail -1
echo "=== gpu_sample, gpu_batch $(date +%T)"
timeout 100 $C/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1; echo "gpu_sample exit $?" >> $O/gpu_sample.log
grep -E "crafted|test result|panicked|exit" $O/gpu_sample.log | cut -c1-200
timeout 150 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log
grep -E "^test |batched sampling|batch [0-9]: step|test result|panicked|exit" $O/gpu_batch.log | cut -c1-200
ready() {
  for i in $(seq 600); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1/health')" 2>/dev/null && return 0
    sleep 0.5; done; return 1
}
echo "=== servebench 1.5B: greedy and sampled, new and base $(date +%T)"
for v in new-greedy new-sampled base-sampled new-sampled new-greedy; do
  X=$G; [ ${v%%-*} = base ] && X=$B; T=0; [ ${v#*-} = sampled ] && T=0.7
  $X serve /tmp/gr/1.5b.gguf --parallel 8 --ctx 1024 --port 18090 2> $O/server_$v.log & S=$!
  ready 18090 || echo "server $v not ready"
  timeout 120 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --temperature $T --pid $S > $O/servebench_${v}_$(date +%s).txt 2>&1
  kill $S; wait $S
  echo "$v: $(tail -4 $(ls -t $O/servebench_${v}_*.txt | head -1) | python3 -c 'import json,sys
print(" ".join("%d streams %s tok/s" % (j["streams"], j["median_aggregate_decode_tok_s"]) for j in map(json.loads, sys.stdin)))' 2>&1)"
done
cd $OUT && tar czf r.tgz r && rm -rf r
