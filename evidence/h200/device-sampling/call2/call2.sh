#!/usr/bin/env bash
# device call 3 of 2026-12-02 (third session): base = main's binary (6f5c696; 024ef5b adds evidence only), new = working tree: sampled decode
# steps end in the device sampler (kernels/argmax.cu `sample`) inside the captured decode graph instead of copying
# the logits to the host. Parity: gpu_sample (device token = host `generate::sample` for the same logits and draw at
# every step), `graphrun run --temp` tokens with GRAPHRUN_DEVICE_SAMPLING=1 and =0 (host) identical. Speed: greedy vs
# sampled on the device vs sampled on the host, same binary, same call; greedy against the base; Nsight kernel time.
# The sampler selects its candidates by radix select (call 1 sorted 4,096 keys per CTA by a bitonic network: 136 us).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* gpu_sample; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== gpu_sample $(date +%T)"
timeout 150 $C/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1; echo "gpu_sample exit $?" >> $O/gpu_sample.log
grep -E "steps|panicked|test result|exit" $O/gpu_sample.log | cut -c1-220
echo "=== run --temp: device vs host sampler, same seed $(date +%T)"
S="--temp 0.7 --top-k 40 --top-p 0.9 --seed 7"
for m in 0.5b 1.5b; do for d in 1 0; do
  GRAPHRUN_DEVICE_SAMPLING=$d timeout 60 $G run /tmp/gr/$m.gguf -p "def fib(n):" -n 200 $S --ids > $O/run_${m}_dev$d.txt 2> $O/run_${m}_dev$d.err; done
  cmp -s $O/run_${m}_dev1.txt $O/run_${m}_dev0.txt && echo "$m: identical ($(wc -l < $O/run_${m}_dev1.txt) ids)" || echo "$m: DIFFERENT"; done
echo "=== bench: greedy (base, new), sampled on device, sampled on host $(date +%T)"
for m in 0.5b 1.5b 7b; do
  for v in base-greedy new-greedy new-device new-host new-host new-device new-greedy base-greedy; do
    X=$G; [ ${v%%-*} = base ] && X=$B; A=""; E=1
    case $v in *device) A="$S";; *host) A="$S"; E=0;; esac
    GRAPHRUN_DEVICE_SAMPLING=$E timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 256 -r 3 $A --json > $O/bench_${m}_${v}_$(date +%s%N).json 2>$O/bench_${m}_${v}.err
  done
done
python3 - $O <<'PY'
import json,glob,sys,collections
d=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/bench_*.json')):
    _,m,v,_=f.split('/')[-1].split('_')
    try: j=json.load(open(f))
    except Exception as e: print(f,'unreadable',e); continue
    for t in j['tests']: d[(m,v,t['test'])]+=t['runs']
for (m,v,t),r in sorted(d.items()): print(m,v,t,'mean %.1f'%(sum(r)/len(r)),'runs',' '.join('%.1f'%x for x in r))
PY
echo "=== Nsight: the sampler's and the argmax's kernel time $(date +%T)"
for m in 1.5b 7b; do
  timeout 60 ncu --clock-control none --kernel-name regex:'^(sample|argmax)$' --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/$m.gguf -p 16 -n 16 -r 1 $S > $O/ncu_sample_$m.csv 2> $O/ncu_sample_$m.err
  timeout 60 ncu --clock-control none --kernel-name regex:'^argmax$' --metrics gpu__time_duration.sum --csv --print-units base $G bench /tmp/gr/$m.gguf -p 16 -n 16 -r 1 > $O/ncu_argmax_$m.csv 2> $O/ncu_argmax_$m.err
done
python3 - $O <<'PY'
import csv,sys,glob,collections
for f in sorted(glob.glob(sys.argv[1]+'/ncu_*.csv')):
    try:
        rows=[r for r in csv.reader(open(f)) if len(r)>10]; h=rows[0]; ki=h.index('Kernel Name'); vi=h.index('Metric Value')
        t=collections.defaultdict(list)
        for r in rows[1:]: t[r[ki]].append(float(r[vi].replace(',',''))/1e3)
        print(f.split('/')[-1], ' '.join(f'{k}: {len(v)}x median {sorted(v)[len(v)//2]:.1f} us' for k,v in t.items()))
    except Exception as e: print(f, e)
PY
cd $OUT && tar czf r.tgz r && rm -rf r
