set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$(mktemp -d); xz -dc carry/mvb.tar.xz | tar xf - -C $C; chmod +x $C/base $C/mvp
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || $C/base synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 7b 1.5b 0.5b; do for a in base mvp mvp base; do
  timeout 45 $C/$a bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 carry/benchsum2.py $O $m graph base mvp | tee -a $O/bench_summary.txt; done
for a in base mvp; do timeout 40 $C/$a dump /tmp/gr/7b.gguf --stage fused --profile > $O/profile_7b_$a.txt 2>&1; grep 'total kernel' $O/profile_7b_$a.txt; done
for m in 0.5b 1.5b 7b; do for a in base mvp; do timeout 30 $C/$a run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_$a.txt 2>/dev/null; done; cmp -s $O/tok_${m}_base.txt $O/tok_${m}_mvp.txt && echo "$m same tokens" || echo "$m DIFFER"; done | tee $O/tokens.txt
(cd $OUT && tar czf r.tgz r && rm -rf r)
