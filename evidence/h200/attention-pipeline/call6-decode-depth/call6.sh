#!/usr/bin/env bash
# device call 6 (2026-12-02): decode at depth on the 7B and 1.5B (graphrun only; #11's status), kernels as at 46ff530.
set -u
cd carry && xz -d -T0 graphrun.xz && chmod +x graphrun; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
mkdir -p /tmp/gr
for m in 7b 1.5b; do $G synth --preset $m -o /tmp/gr/$m.gguf 2>&1 | tail -1
  timeout 100 $G bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_depth_$m.json 2> $O/bench_depth_$m.err
  python3 -c "import json; print('$m', ' '.join(f\"{t['test']}@d{t['depth']}={t['tok_s']:.1f}\" for t in json.load(open('$O/bench_depth_$m.json'))['tests']))"
done
cd $OUT && tar czf r.tgz r && rm -rf r
