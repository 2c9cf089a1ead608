#!/usr/bin/env bash
# device call 1 (2026-12-01): base = e258042 (main), new = working tree (prefill attention on tensor cores),
# pf = new + branch mmq-prefetch (886f5f5: cp.async staging of the next chunk in mmq)
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 120 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -4 $O/backend_ops.log
grep -c '"ok":false' $O/backend_ops.jsonl; grep 'attention_mma' $O/backend_ops.jsonl | python3 -c "
import json,sys
r=[json.loads(l) for l in sys.stdin]; print(len(r),'attention_mma checks, worst nmse', max(x['nmse'] for x in r) if r else None)"
echo "=== bench $(date +%T)"
for m in 7b 1.5b; do for b in base new pf pf new base; do X=$G; [ $b = base ] && X=$B; [ $b = pf ] && X=$C/graphrun-pf
  timeout 100 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done; done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']), ' ttft', ' '.join(f"{t['ttft_ms']:.1f}" for t in j['tests'] if t.get('ttft_ms')))
PY
echo "=== e2e $(date +%T)"
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b GRAPHRUN_E2E_LENGTHS=183,647,2000 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout 170 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?" >> $O/gpu_e2e.log; tail -3 $O/gpu_e2e.log
echo "=== ncu $(date +%T)"
for b in new base; do X=$G; [ $b = base ] && X=$B
timeout 90 ncu --kernel-name regex:'^attention_(mma_)?f16$' --launch-skip 448 --launch-count 2 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats $X bench /tmp/gr/7b.gguf -p 8192 -n 1 -r 1 > $O/ncu_attention_7b_pp8192_$b.txt 2>&1; grep -E "attention|Duration|Registers Per|Achieved Occ|Compute \(SM\) Thr" $O/ncu_attention_7b_pp8192_$b.txt | head -12; done
cd $OUT && tar czf r.tgz r && rm -rf r
