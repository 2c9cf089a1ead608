#!/usr/bin/env bash
# att-scores call 1: decode attention's score phase with each K element loaded and widened once per CTA
# (branch att-scores, arm `new`) and, when carried, the merge that copies its partials by cp.async (branch
# merge-cp, arm `mc`), each against main (arm `base`). Carry exactly: carry/pa.tar.xz (dir pa/: main's kernels
# and code, built from 1196236 = main 9d63a0a's source less evidence), carry/sc.tar.xz (dir sc/: att-scores'
# graphrun, gpu_e2e, gpu_persistent, backend_ops), carry/mc.tar.xz (dir mc/: the same four of merge-cp),
# carry/fam_att.cu, carry/fam_sc.cu, carry/fam_mc.cu (the attention families the builds generate),
# carry/benchsum2.py.
# (1) attnbench3 with each family (gen: µs per launch at 576, 4,104, 8,200 positions on the 7B and 1.5B shapes);
# (2) greedy tokens, short and 4,979-token prompts, each arm against base; (3) bench A/B interleaved (base, new,
# mc, mc, new, base, base, new, mc) at depths 0, 4,096, 8,192; (4) backend_ops, gpu_persistent, gpu_e2e
# (synthetic, capped) on each branch; (5) Nsight Compute's per-instruction sampling of both score kernels at
# 4,104 positions (7B), if time is left.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry; D=evidence/h100/attn-depth
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in pa sc mc; do [ -f $C/$t.tar.xz ] && xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/pa/graphrun [new]=/tmp/x/sc/graphrun [mc]=/tmp/x/mc/graphrun)
A="base new"; [ -x /tmp/x/mc/graphrun ] && A="base new mc"
echo "=== attnbench3, both families $(date +%T) ($SECONDS s)"
F="att sc"; [ -f $C/fam_mc.cu ] && F="att sc mc"
for f in $F; do nvcc -O3 -arch=sm_90 -std=c++17 -lineinfo -DFAM="\"fam_$f.cu\"" -I$C $D/attnbench3.cu -o /tmp/ab_$f 2>&1 | grep -v deprecated; done
for f in $F; do timeout 90 /tmp/ab_$f > $O/attnbench3_$f.txt 2>&1; echo "attnbench3 fam_$f: exit $?"; grep -E "^==|^npos|gen [0-9]" $O/attnbench3_$f.txt | sed -E 's/ pack .*//'; done; pack
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 0.5b 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in $A; do timeout 90 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in ${A#base }; do python3 - $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt "$m $L $b" <<'PY'
import sys
a, b = (open(f).read().split() for f in sys.argv[1:3])
d = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print(f"{sys.argv[3]}: " + (f"tokens equal ({len(a)})" if a == b else f"tokens differ from index {d} of {len(a)}/{len(b)}"))
PY
  done
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
ORDER="base new new base base new"; [ "$A" = "base new mc" ] && ORDER="base new mc mc new base base new mc"
for m in 7b 1.5b 0.5b; do for b in $ORDER; do
  timeout 90 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph $A | tee -a $O/bench_summary.txt; pack; done
# The suites on each branch (mc first when carried: its call comes second in the notes), the
# end-to-end suite capped so that each branch gets its share of the time up to 480 s.
BR=sc; [ -x /tmp/x/mc/graphrun ] && BR="mc sc"
for t in $BR; do export GRAPHRUN_BIN=/tmp/x/$t/graphrun
  echo "=== backend_ops, gpu_persistent ($t) $(date +%T) ($SECONDS s)"
  timeout 60 /tmp/x/$t/backend_ops --ignored --nocapture > $O/backend_ops_$t.log 2>&1; echo "backend_ops $t: exit $?"; grep -E "test result" $O/backend_ops_$t.log
  timeout 110 /tmp/x/$t/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent_$t.log 2>&1
  echo "gpu_persistent $t: exit $? ($SECONDS s)"; grep -E "^test |test result" $O/gpu_persistent_$t.log; pack
done
n=$(echo $BR | wc -w)
for t in $BR; do export GRAPHRUN_BIN=/tmp/x/$t/graphrun
  L=$(( (480 - SECONDS) / n )); n=$((n - 1)); echo "=== gpu_e2e synthetic ($t), $L s $(date +%T)"
  [ $L -gt 20 ] || continue
  GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,7,129,513 GRAPHRUN_E2E_REPORT=$O/gpu_e2e_$t.jsonl \
    timeout $L /tmp/x/$t/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e_$t.log 2>&1
  echo "gpu_e2e $t: exit $? ($SECONDS s)"; grep -E "test result|^test " $O/gpu_e2e_$t.log | head -3; grep -c "tokens interp" $O/gpu_e2e_$t.log; pack
done
L=$((530 - SECONDS)); echo "=== ncu, $L s $(date +%T)"
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for f in sc att; do [ $((530 - SECONDS)) -gt 40 ] || break
  timeout $((530 - SECONDS)) $NCU --kernel-name attention_split_f16 --launch-skip 40 --launch-count 1 --set full --clock-control none \
    --import-source yes -o $O/ncu_$f /tmp/ab_$f prof > $O/ncu_$f.log 2>&1; echo "ncu $f: exit $?"
  $NCU -i $O/ncu_$f.ncu-rep --page source --csv --print-source sass > $O/ncu_${f}_sass.csv 2>&1
  $NCU -i $O/ncu_$f.ncu-rep --page details > $O/ncu_${f}_details.txt 2>&1
  grep -E "^    Duration|Warp Cycles Per Issued|Issue Slots Busy|Shared Memory Wavefront" $O/ncu_${f}_details.txt | head -6; pack
done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
