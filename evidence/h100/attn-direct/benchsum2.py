# benchsum2.py DIR MODEL KERNEL LABEL...: tok/s of every run of bench_<model>_<kernel>_<label>_*.json, per test
# and depth, and each label's mean against the first label's.
import json, glob, sys, statistics as st
o, m, k, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
r = {}
for b in labels:
    for f in sorted(glob.glob(f"{o}/bench_{m}_{k}_{b}_*.json")):
        try: d = json.load(open(f))
        except Exception as e: print("bad", f, e); continue
        for t in d["tests"]: r.setdefault((t["test"], t["depth"]), {}).setdefault(b, []).extend(t["runs"])
for (t, dp), v in sorted(r.items()):
    base = st.mean(v[labels[0]]) if labels[0] in v else float("nan")
    print(f"{m} {k:>10} {t:>6} d{dp:<5} " + "  ".join(f"{b} {st.mean(v[b]):.1f} [{' '.join('%.0f' % x for x in v[b])}]" + ("" if b == labels[0] else f" ({100 * (st.mean(v[b]) / base - 1):+.1f}%)") for b in labels if b in v))
