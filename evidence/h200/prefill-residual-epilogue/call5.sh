#!/usr/bin/env bash
# device call 5 (2026-12-01, session 4): base = 351881a (main), new = working tree (prefill: a matmul on the GEMM whose
# only consumer is a residual add takes it in the GEMM's epilogue; attn_out and ffn_down groups fused)
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== trace $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/0.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_base --contract trace_exact > $O/trace_new_vs_base_1.5b_651.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_1.5b_651.txt; grep -E "verdict|exit" $O/trace_new_vs_base_1.5b_651.txt
$G diff /tmp/tr2_new /tmp/tr2_base --contract trace_exact > $O/trace_new_vs_base_0.5b_651.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_0.5b_651.txt; grep -E "verdict|exit" $O/trace_new_vs_base_0.5b_651.txt
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 45 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
echo "=== bench $(date +%T)"
for m in 7b 1.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 30 $X bench /tmp/gr/$m.gguf -p 512,2048 -n 8 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done; done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
cd $OUT && tar czf r.tgz r && rm -rf r
