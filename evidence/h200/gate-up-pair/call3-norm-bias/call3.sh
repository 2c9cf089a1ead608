#!/usr/bin/env bash
# device call 3 of 2026-12-02 (second session): base = 085c904's binary (call 2's), new = the tree committed on branch
# prefill-norm-bias (fffc6e0, kernels and host code identical to this run's): the prefill GEMM
# groups take their RMSNorm prologue (quantize_q8 norms each row with the rms_norm kernel's arithmetic) and the Q/K/V
# bias adds (the shared-input GEMM's epilogue). Parity (backend_ops, trace_exact new vs base, gpu_persistent, gpu_e2e at
# 183/647/2,000 tokens), the A/B, Nsight kernel times of the new 7B pp512.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_persistent gpu_e2e; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys
w={}; n=0; bad=0
for l in open(sys.argv[1]):
    r=json.loads(l); n+=1; bad+= not r['ok']
    if 'mmq' not in r['kernel']: continue
    tag=r['kernel']+' '+r['act']; q=r['nmse']/r['band']
    if q>=w.get(tag,(-1,))[0]: w[tag]=(q,r['nmse'],r['band'],r['ok'],r['value'])
print('records',n,'out of band',bad)
for t,v in sorted(w.items()): print('worst',t,v[4],'nmse %.3e band %.1e ok %s'%(v[1],v[2],v[3]))
PY
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(300)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/0.5b.gguf -p "$P2" --ctx 8192 --gpu --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1
  $X trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr3_$b 2>&1 | tail -1; done
for x in "tr 1.5b_651" "tr2 0.5b_long" "tr3 7b_651"; do set -- $x
  $G diff /tmp/$1_new /tmp/$1_base --contract trace_exact > $O/trace_new_vs_base_$2.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$2.txt; grep -E "compared|verdict|exit|only" $O/trace_new_vs_base_$2.txt | cut -c1-200 | head -6; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do
  for b in base new new base; do X=$G; [ $b = base ] && X=$B
    timeout 60 $X bench /tmp/gr/$m.gguf -p 512,2048,8192 -n 32 -r 2 --json > $O/bench_${m}_${b}_$(date +%s).json 2>$O/bench_${m}_${b}.err; done
done
python3 - $O <<'PY'
import json,glob,sys
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    try: j=json.load(open(f))
    except Exception as e: print(f, 'unreadable', e); continue
    print(f.split('/')[-1], ' '.join(f"{t['test']}={t['tok_s']:.0f}" for t in j['tests']))
PY
echo "=== ncu kernel times pp512 7B, new and base (real clocks) $(date +%T)"
for b in new base; do X=$G; [ $b = base ] && X=$B
  timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base $X bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > $O/ncu_pp512_7b_$b.csv 2> $O/ncu_pp512_7b_$b.err; tail -1 $O/ncu_pp512_7b_$b.err
done
echo "=== persistent (prompts of 1 to 2,049 tokens, then decode) $(date +%T)"
timeout 110 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log
echo "=== e2e $(date +%T)"
left=$((575 - SECONDS)); [ $left -gt 40 ] && { GRAPHRUN_E2E_LENGTHS=183,647,2000 GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout $left $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; tail -3 $O/gpu_e2e.log; }
cd $OUT && tar czf r.tgz r && rm -rf r
