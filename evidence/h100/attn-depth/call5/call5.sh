#!/usr/bin/env bash
# attn-depth call 5 (session 51): where a 7B decode attention CTA's score phase stalls, by Nsight Compute's
# per-instruction warp-state sampling of the generated kernel (`gen`) at 4,104 positions. Carry: carry/fam_att.cu
# (main's generated attention family). ncu replays the launch alone with the L2 flushed (its default cache
# control), so the cache comes from DRAM as in the decode step; clocks are left unlocked.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
O=$OUT/r; mkdir -p $O; C=$PWD/carry; D=evidence/h100/attn-depth
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $O/nvidia-smi.csv
nvcc -O3 -arch=sm_90 -std=c++17 -lineinfo -DFAM='"fam_att.cu"' -I$C $D/attnbench3.cu -o /tmp/ab3 2>&1 | grep -v deprecated
/tmp/ab3 prof | tee $O/prof.txt
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
timeout 240 $NCU --kernel-name attention_split_f16 --launch-skip 40 --launch-count 1 --set full --clock-control none \
  --import-source yes -o $O/att /tmp/ab3 prof > $O/ncu.log 2>&1; echo "ncu: exit $?"; tail -3 $O/ncu.log
$NCU -i $O/att.ncu-rep --page details > $O/details.txt 2>&1
$NCU -i $O/att.ncu-rep --page source --csv --print-source sass > $O/sass.csv 2>&1
$NCU -i $O/att.ncu-rep --page raw --csv > $O/raw.csv 2>&1
ls -la $O; grep -E "Duration|Warp Cycles Per Issued|Issue Slots Busy|Stall|Shared|Achieved Occupancy" $O/details.txt | head -40
