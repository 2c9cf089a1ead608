import json,glob,statistics,sys,re,os
d=sys.argv[1]
res={}
for f in sorted(glob.glob(d+"/servebench_*.txt")):
    m=re.match(r".*servebench_(.+)_(base|nb)_(\d+)\.txt",f); p,arm,k=m.groups()
    for l in open(f):
        if "median" not in l: continue
        j=json.loads(l); res.setdefault((p,j["streams"],arm),[]).append(j["median_aggregate_decode_tok_s"])
print("| preset | streams | base runs | nb runs | base median | nb median | change |")
print("|---|---:|---|---|---:|---:|---:|")
for p in ["7b","1.5b"]:
  for s in [1,2,4,8]:
    b=res[(p,s,"base")]; n=res[(p,s,"nb")]
    mb=statistics.median(b); mn=statistics.median(n)
    print(f"| {p.upper()} | {s} | {' / '.join(f'{x:,.1f}' for x in b)} | {' / '.join(f'{x:,.1f}' for x in n)} | {mb:,.1f} | {mn:,.1f} | {100*(mn/mb-1):+.1f}% |")
