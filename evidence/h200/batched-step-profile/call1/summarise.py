"""One decode step's kernels from an Nsight CSV of gpu__time_duration (call1.sh): a step
runs from one embedding launch to the next. Usage: python3 summarise.py ncu_P_bB.csv[.xz]"""
import collections, csv, io, lzma, sys
f = sys.argv[1]
text = lzma.open(f, "rt") if f.endswith(".xz") else open(f)
rows = [r for r in csv.reader(text) if len(r) > 10]
h = rows[0]
ks = []
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        ks.append((d["Kernel Name"].split("(")[0], float(d["Metric Value"].replace(",", "")) / 1e3))
st = [i for i, k in enumerate(ks) if k[0].startswith("embedding")]
a, b = st[-2], st[-1]
step = ks[a:b]
t = collections.defaultdict(lambda: [0, 0.0])
for n, us in step:
    t[n][0] += 1
    t[n][1] += us
print(f"{len(ks)} launches; one step (launches {a}..{b - 1}): {len(step)} kernels, {sum(u for _, u in step):.1f} us")
for n, (c, us) in sorted(t.items(), key=lambda x: -x[1][1]):
    print(f"  {n}: {c} launches, {us:.1f} us, {us / c:.1f} us each")
