#!/usr/bin/env bash
# device call 6 (2026-12-01): base = e4c4e30 (main), new = working tree (tensor-core prefill attention:
# __launch_bounds__(128, 3) and the K/V stage count that keeps the most warps resident: 1 stage, 3 CTAs per H200 SM)
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
mkdir -p /tmp/gr; for p in 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T)"
for m in 7b 1.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X bench /tmp/gr/$m.gguf -p 2048,8192 -n 8 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done; done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 45 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
echo "=== persistent $(date +%T)"
timeout 40 $C/gpu_persistent prompts_of_every_length_then_decode_match_the_interpreter --ignored --nocapture > $O/gpu_persistent_lengths.log 2>&1; echo "exit $?" >> $O/gpu_persistent_lengths.log; tail -3 $O/gpu_persistent_lengths.log
cd $OUT && tar czf r.tgz r && rm -rf r
