#!/usr/bin/env bash
# device call 2 (2026-12-02): base = 125a316 (main), new = working tree: prefill attention's instruction diet
# (attn_prefill_mma.cuh) and the prefill gate/up group with SiLU(gate)·up in the up GEMM's epilogue.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops gpu_e2e gpu_batch; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== ops $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
python3 - $O/backend_ops.jsonl <<'PY'
import json,sys
w={}
for l in open(sys.argv[1]):
    r=json.loads(l); k=r['kernel']
    tag=None
    if 'attention_mma' in k: tag='attention_mma'
    elif k.count('mmq')==2: tag='gate_up '+r['value'].split('.')[-1]
    if not tag: continue
    tag+=' '+r['act']; q=r['nmse']/r['band']
    if q>=w.get(tag,(-1,))[0]: w[tag]=(q,r['nmse'],r['band'],r['ok'])
for t,v in sorted(w.items()): print('worst',t,'nmse %.3e band %.1e ok %s'%(v[1],v[2],v[3]))
PY
echo "=== bench $(date +%T)"
for m in 7b 1.5b; do
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
echo "=== trace new vs base, 1.5B 651 tokens $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_base > $O/trace_new_vs_base_1.5b_651.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_1.5b_651.txt; grep -E "compared|verdict|exit|worst" $O/trace_new_vs_base_1.5b_651.txt | cut -c1-200 | head -5
echo "=== ncu attention times pp8192 (new) $(date +%T)"
timeout 60 ncu --clock-control none --kernel-name regex:'^attention' --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/7b.gguf -p 8192 -n 1 -r 1 > $O/ncu_att_times_pp8192_new.csv 2> $O/ncu_att_times_pp8192_new.err; tail -1 $O/ncu_att_times_pp8192_new.err
echo "=== GPU vs interpreter, 1.5B 2,000 tokens $(date +%T)"
P2="$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(84)]))") a b c"
for act in q8 f32; do
  [ $SECONDS -gt 420 ] && break
  $G trace /tmp/gr/1.5b.gguf -p "$P2" --act $act --gpu --decode 2 --nodes 'blk.0.*,blk.14.*,blk.27.*,output*,result*' -o /tmp/tg_$act 2>&1 | tail -1
  timeout 75 $G trace /tmp/gr/1.5b.gguf -p "$P2" --act $act --interp --decode 2 --nodes 'blk.0.*,blk.14.*,blk.27.*,output*,result*' -o /tmp/ti_$act > $O/interp_trace_$act.log 2>&1; echo "interp exit $?"
  $G diff /tmp/tg_$act /tmp/ti_$act > $O/diff_gpu_vs_interp_1.5b_2000_$act.txt 2>&1; echo "diff exit $?" >> $O/diff_gpu_vs_interp_1.5b_2000_$act.txt
  grep -E "compared|verdict|exit" $O/diff_gpu_vs_interp_1.5b_2000_$act.txt | cut -c1-200
done
echo "=== e2e $(date +%T)"
left=$((560 - SECONDS)); [ $left -gt 40 ] && { GRAPHRUN_E2E_LENGTHS=183,647,2000 GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout $left $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; tail -3 $O/gpu_e2e.log; }
cd $OUT && tar czf r.tgz r && rm -rf r
