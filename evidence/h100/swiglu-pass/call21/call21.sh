#!/usr/bin/env bash
# Session 63, call 21: Nsight Compute on the 7B's gate+up matvec (matvec_q4_k_q8_swiglu) in the captured decode
# graph, main's kernels (base/) against swiglu-pass (sp/, rejected in call 20: 33.6 -> 34.8 us in the profile),
# to see what the two-pass order changed: DRAM and L2 throughput, L2 hit rate, sectors, warp stalls.
# Carry carry/c20.tar.xz and carry/call21.sh. About 60 s.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu); $NCU --version > $O/ncu-version.txt 2>&1; tail -1 $O/ncu-version.txt
X=$(mktemp -d); xz -dc $C/c20.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; $X/base/graphrun synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
k=matvec_q4_k_q8_swiglu
for a in base sp; do
  timeout 120 $NCU --target-processes all -k regex:"^$k\$" --launch-skip 30 --launch-count 3 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section WarpStateStats \
    --section LaunchStats --section Occupancy --section SchedulerStats \
    --metrics dram__sectors_read.sum,lts__t_sector_hit_rate.pct,lts__t_sectors_srcunit_tex_op_read.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
    --import-source no -o /tmp/rep_$a $X/$a/graphrun run /tmp/gr/7b.gguf -p "$P" -n 40 > $O/ncu_run_$a.log 2>&1
  echo "$a: ncu exit $? ($SECONDS s)"
  $NCU --import /tmp/rep_$a.ncu-rep --page details > $O/details_$a.txt 2>&1
  $NCU --import /tmp/rep_$a.ncu-rep --page raw --csv > $O/raw_$a.csv 2>&1
  grep -E "Duration|DRAM Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|L2 Hit|L1/TEX Hit|Issue Slots|Warp Cycles Per Issued|Achieved Occupancy|dram__sectors_read|lts__t_sector_hit" $O/details_$a.txt | head -24
  pack
done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
