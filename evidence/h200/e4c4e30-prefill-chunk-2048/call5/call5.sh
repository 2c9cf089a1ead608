#!/usr/bin/env bash
# device call 5 (2026-12-01): the checks call 4 did not finish; base = bd97066, new = working tree (chunks of 2,048)
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* gpu_e2e; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
mkdir -p /tmp/gr; for p in 0.5b 1.5b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== e2e tiny 2049 $(date +%T)"
GRAPHRUN_E2E_PRESETS=tiny GRAPHRUN_E2E_LENGTHS=2049 timeout 40 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_tiny_2049.log 2>&1; echo "gpu_e2e exit $?" >> $O/gpu_e2e_tiny_2049.log; grep -E "step|test result|exit|panicked" $O/gpu_e2e_tiny_2049.log | cut -c1-200 | head -8
echo "=== trace, a prompt of two chunks $(date +%T)"
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(90)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/0.5b.gguf -p "$P2" --ctx 4096 --gpu --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1; done
$G diff /tmp/tr2_new /tmp/tr2_base --contract trace_exact > $O/trace_new_vs_base_0.5b_long.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_0.5b_long.txt; grep -E "realigned|verdict|exit" $O/trace_new_vs_base_0.5b_long.txt | cut -c1-300 | head -4
echo "=== serve $(date +%T)"
SERVEBENCH_PRESETS=1.5b SERVEBENCH_REPS=1 timeout 90 scripts/gpu-check carry $O servebench 2>&1 | tail -6
echo "=== e2e 0.5b 2049 $(date +%T)"
GRAPHRUN_E2E_PRESETS=0.5b GRAPHRUN_E2E_LENGTHS=2049 GRAPHRUN_E2E_REPORT=$O/gpu_e2e_0.5b.jsonl timeout 170 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_0.5b_2049.log 2>&1; echo "gpu_e2e exit $?" >> $O/gpu_e2e_0.5b_2049.log; grep -E "records|test result|exit|panicked" $O/gpu_e2e_0.5b_2049.log | cut -c1-200 | tail -6
cd $OUT && tar czf r.tgz r && rm -rf r
