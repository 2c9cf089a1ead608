#!/usr/bin/env bash
# device call 7 (2026-12-01): adb1e99 (main) on the synthetic 1.5B, a 2,000-token prompt + 2 decode steps:
# GPU trace against the interpreter's (#12's parity at 2,000 tokens on the 1.5B), q8 and f32 semantics
set -u
cd carry && xz -d -T0 graphrun.xz && chmod +x graphrun; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
mkdir -p /tmp/gr; $G synth --preset 1.5b -o /tmp/gr/1.5b.gguf 2>&1 | tail -1
P="$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(84)]))") a b c"
for act in q8 f32; do
  echo "=== $act $(date +%T)"
  $G trace /tmp/gr/1.5b.gguf -p "$P" --act $act --gpu --decode 2 --nodes 'blk.0.*,blk.14.*,blk.27.*,output*,result*' -o /tmp/tg_$act 2>&1 | tail -1
  timeout 75 $G trace /tmp/gr/1.5b.gguf -p "$P" --act $act --interp --decode 2 --nodes 'blk.0.*,blk.14.*,blk.27.*,output*,result*' -o /tmp/ti_$act > $O/interp_trace_$act.log 2>&1; echo "interp exit $?"; tail -1 $O/interp_trace_$act.log
  $G diff /tmp/tg_$act /tmp/ti_$act > $O/diff_gpu_vs_interp_1.5b_2000_$act.txt 2>&1; echo "diff exit $?" >> $O/diff_gpu_vs_interp_1.5b_2000_$act.txt
  grep -E "^A:|^B:|compared|verdict|exit" $O/diff_gpu_vs_interp_1.5b_2000_$act.txt | cut -c1-200
done
cd $OUT && tar czf r.tgz r && rm -rf r
