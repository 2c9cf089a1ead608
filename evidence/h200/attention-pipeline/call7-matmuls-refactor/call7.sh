#!/usr/bin/env bash
# device call 7 (2026-12-02): 000d428 (one matmuls() entry point, host only) against 46ff530's binary: backend_ops and
# trace_exact on the 1.5B (651 tokens) and the 0.5B (7,579 tokens).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* backend_ops; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
mkdir -p /tmp/gr; for p in 0.5b 1.5b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 60 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
P2=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(300)]))")
for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/1.5b.gguf -p "$P" --gpu --decode 2 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_$b 2>&1 | tail -1
  $X trace /tmp/gr/0.5b.gguf -p "$P2" --ctx 8192 --gpu --decode 2 --nodes 'blk.0.*,blk.23.*,output*,result*' -o /tmp/tr2_$b 2>&1 | tail -1; done
$G diff /tmp/tr_new /tmp/tr_base --contract trace_exact > $O/trace_new_vs_base_1.5b_651.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_1.5b_651.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_1.5b_651.txt | cut -c1-200
$G diff /tmp/tr2_new /tmp/tr2_base --contract trace_exact > $O/trace_new_vs_base_0.5b_long.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_0.5b_long.txt; grep -E "compared|verdict|exit" $O/trace_new_vs_base_0.5b_long.txt | cut -c1-200
gzip -9 $O/backend_ops.jsonl
cd $OUT && tar czf r.tgz r && rm -rf r
