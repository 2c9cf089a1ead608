#!/usr/bin/env bash
# device call 5 (2026-12-02): where the 7B's gate GEMM (mmq_q4_k, 296x4 CTAs, pp512, layer 1) spends its issue slots,
# per SASS instruction (Nsight Compute source page), for the next GEMM step of #12. Kernels as at 46ff530.
set -u
cd carry && xz -d -T0 graphrun.xz && chmod +x graphrun; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache PATH=$PATH:/usr/local/cuda/bin
mkdir -p /tmp/gr; $G synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
timeout 200 ncu --kernel-name regex:'^mmq_q4_k$' --launch-skip 132 --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis \
  --section SchedulerStats --section WarpStateStats --section InstructionStats --section SourceCounters --section Occupancy \
  --import-source no -o /tmp/rep $G bench /tmp/gr/7b.gguf -p 512 -n 1 -r 1 > $O/ncu_run.log 2>&1; tail -2 $O/ncu_run.log
ncu --import /tmp/rep.ncu-rep --print-summary none > $O/ncu_gate_details.txt 2>&1
ncu --import /tmp/rep.ncu-rep --page source --csv --print-source sass > $O/ncu_gate_source_sass.csv 2> $O/ncu_source.err || \
  ncu --import /tmp/rep.ncu-rep --page source --csv > $O/ncu_gate_source_sass.csv 2>> $O/ncu_source.err
wc -l $O/ncu_gate_source_sass.csv; head -c 600 $O/ncu_gate_source_sass.csv; echo; grep -E "Duration|Grid Size|Issue Slots|Executed Ipc|No Eligible" $O/ncu_gate_details.txt | head
gzip -9 $O/ncu_gate_source_sass.csv
cd $OUT && tar czf r.tgz r && rm -rf r
