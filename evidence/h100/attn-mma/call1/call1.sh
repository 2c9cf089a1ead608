#!/usr/bin/env bash
# Session 59, call 2: branch attn-mma (decode attention's scores on f16 tensor cores with split queries, dir nm/ of
# carry/c10.tar.xz: graphrun, backend_ops, gpu_e2e, gpu_persistent, gpu_batch) against main 876fa01 (dir base/:
# graphrun, backend_ops). backend_ops with its NMSE report on both, then the bench A/B -p 512 -n 128 -d 0,4096,8192 -r 2 (arms base nm nm
# base on the 7B, 1.5B and 0.5B presets), greedy tokens of both after short and ~4,500-token prompts, and on nm
# gpu_persistent, gpu_e2e synthetic (tiny, 0.5B, 1.5B; lengths 1, 129, 513) and gpu_batch.
# usage: bash carry/call10.sh. Carry carry/c10.tar.xz, carry/call10.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c10.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== backend_ops $(date +%T) ($SECONDS s)"
for a in nm base; do
  GRAPHRUN_PARITY_REPORT=$O/backend_ops_$a.jsonl timeout 150 $X/$a/backend_ops --ignored --nocapture > $O/backend_ops_$a.log 2>&1
  echo "backend_ops $a exit $? ($SECONDS s): $(grep -E '^test result' $O/backend_ops_$a.log | tail -1)"; pack
done
python3 - $O <<'PY' | tee $O/attention_nmse.txt
import json,sys
o=sys.argv[1]; r={}
for a in ['base','nm']:
    try:
        for l in open(f'{o}/backend_ops_{a}.jsonl'):
            j=json.loads(l); k=' | '.join(str(j.get(x,'')) for x in ('model','act','schedule','kernel','value'))
            if 'attention_split' in k: r.setdefault(k,{})[a]=(j.get('nmse'),j.get('band'))
    except Exception as e: print('report', a, e)
for k,v in r.items(): print(k, ' '.join(f"{a} {v[a][0]:.3e}" for a in v if v[a][0] is not None), 'band', next(iter(v.values()))[1])
PY
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for a in base nm nm base; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base nm | tee -a $O/bench_summary.txt; pack; done
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 180))")
for m in 0.5b 1.5b 7b; do for a in base nm; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2>/dev/null
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2>/dev/null
done; for t in short long; do cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_nm.txt && echo "$m $t: same tokens" || echo "$m $t: DIFFER"; done; done | tee $O/tokens.txt
pack
echo "=== suites $(date +%T) ($SECONDS s)"
timeout 100 $X/nm/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_persistent.log | tail -1)"; pack
GRAPHRUN_E2E_PRESETS=tiny,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,129,513 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout 120 $X/nm/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? ($SECONDS s)"; grep -E "^test result|FAIL" $O/gpu_e2e.log | tail -3; xz -f $O/gpu_e2e.jsonl; pack
GRAPHRUN_BIN=$X/nm/graphrun timeout 90 $X/nm/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_batch.log | tail -1)"; pack
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
