#!/usr/bin/env bash
# device call 1 (2026-12-02): where prefill attention's time goes at 8,192 tokens (7B), main's kernels (f9cc8e1 tree,
# attention unchanged since adb1e99).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun*; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
which nsys > $O/nsys.txt 2>&1
mkdir -p /tmp/gr; $G synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
echo "=== bench $(date +%T)"
$G bench /tmp/gr/7b.gguf -p 2048,8192 -n 8 -r 2 --json > $O/bench_7b.json 2>$O/bench_7b.err
python3 -c "import json; print(' '.join(f\"{t['test']}={t['tok_s']:.0f}\" for t in json.load(open('$O/bench_7b.json'))['tests']))"
echo "=== ncu attention times, real clocks $(date +%T)"
timeout 120 ncu --clock-control none --kernel-name regex:'^attention' --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/7b.gguf -p 8192 -n 1 -r 1 > $O/ncu_att_times_pp8192.csv 2> $O/ncu_att_times_pp8192.err; tail -1 $O/ncu_att_times_pp8192.err
echo "=== ncu all kernel times pp2048, real clocks $(date +%T)"
timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/7b.gguf -p 2048 -n 1 -r 1 > $O/ncu_all_times_pp2048.csv 2> $O/ncu_all_times_pp2048.err; tail -1 $O/ncu_all_times_pp2048.err
echo "=== ncu attention detail $(date +%T)"
timeout 150 ncu --kernel-name regex:'^attention_mma_f16$' --launch-skip 112 --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section InstructionStats --section Occupancy --section MemoryWorkloadAnalysis --section LaunchStats --section SourceCounters --import-source no $G bench /tmp/gr/7b.gguf -p 8192 -n 1 -r 1 > $O/ncu_attention_detail.txt 2>&1; grep -E "Duration|Achieved Occ|Compute \(SM\) Thr|Issue Slots|No Eligible" $O/ncu_attention_detail.txt | head
cd $OUT && tar czf r.tgz r && rm -rf r
