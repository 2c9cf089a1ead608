#!/usr/bin/env bash
# device call 5 of 2026-12-03: #12's end-to-end parity at 183, 647 and 2,000 tokens at f2e5b48 (the binary of call 1).
# gpu_e2e (GPU against interpreter traces, every record, q8/f32 x fused/unfused) on tiny, tiny-llama and the 0.5B
# shapes; the 1.5B shapes through `graphrun trace --gpu|--interp` + `graphrun diff` (layers 0, 14, 27 and the head,
# 2 decode steps) at the same three lengths, q8 only: today's changes are all in the q8 GEMM path (the f32 prefill
# runs the CUDA-core matmul, unchanged since deb20eb, whose f32 1.5B diffs are in ../prefill-vs-llama-cpp/call2).
set -u
cd carry && for f in *.xz; do [ $f = llama-cpp-src.tar.xz ] || xz -d -T0 $f; done; chmod +x graphrun gpu_e2e; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; $G synth --preset 1.5b -o /tmp/gr/1.5b.gguf 2>&1 | tail -1
echo "=== gpu_e2e 183,647,2000 $(date +%T) $SECONDS s"
GRAPHRUN_E2E_LENGTHS=183,647,2000 GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout 260 $C/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?" >> $O/gpu_e2e.log; grep -E "test result|exit|panicked" $O/gpu_e2e.log | head -5
defs() { python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range($1)]))"; }
P183="$(defs 8) a b c d."; P647="$(defs 27) a b c d e f g h i j."; P2000="$(defs 84) a b c"
N='blk.0.*,blk.14.*,blk.27.*,output*,result*,logits'
for len in 183 647 2000; do
  case $len in 183) P=$P183;; 647) P=$P647;; 2000) P=$P2000;; esac
  for act in q8; do
    echo "=== 1.5B $len tokens $act $(date +%T) $SECONDS s"
    [ $SECONDS -gt 540 ] && { echo "skipped: out of time"; continue; }
    $G trace /tmp/gr/1.5b.gguf -p "$P" --act $act --gpu --decode 2 --nodes "$N" -o /tmp/tg_${len}_$act > $O/trace_gpu_1.5b_${len}_$act.log 2>&1
    timeout $((575 - SECONDS)) $G trace /tmp/gr/1.5b.gguf -p "$P" --act $act --interp --decode 2 --nodes "$N" -o /tmp/ti_${len}_$act > $O/trace_interp_1.5b_${len}_$act.log 2>&1; echo "interp exit $?"
    $G diff /tmp/tg_${len}_$act /tmp/ti_${len}_$act > $O/diff_gpu_vs_interp_1.5b_${len}_$act.txt 2>&1; echo "diff exit $?" >> $O/diff_gpu_vs_interp_1.5b_${len}_$act.txt
    grep -E "prompt|tokens" $O/trace_gpu_1.5b_${len}_$act.log | head -2 | cut -c1-160
    grep -E "compared|verdict|exit" $O/diff_gpu_vs_interp_1.5b_${len}_$act.txt | cut -c1-200
  done
done
echo "=== end $(date +%T) $SECONDS s"
cd $OUT && tar czf r.tgz r && rm -rf r
