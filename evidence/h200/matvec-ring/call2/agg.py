import csv, sys, collections
for f in sys.argv[1:]:
    rows = list(csv.reader(open(f)))
    hdr = rows[1]; data = rows[2:]
    idx = {h:i for i,h in enumerate(hdr)}
    stalls = [h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
    tot = collections.Counter()
    ops = collections.Counter(); l1 = collections.Counter()
    samples = 0
    for r in data:
        if len(r) < len(hdr): continue
        for s in stalls:
            try: tot[s] += float(r[idx[s]] or 0)
            except: pass
        op = r[idx['Source']].split()[0] if r[idx['Source']] else ''
        if op.startswith('@'): op = r[idx['Source']].split()[1]
        op = op.split('.')[0]
        try: ops[op] += float(r[idx['Instructions Executed']] or 0)
        except: pass
        try: l1[op] += float(r[idx['L1 Tag Requests Global']] or 0)
        except: pass
    T = sum(tot.values())
    print(f, 'samples', T)
    print('  stalls:', ', '.join(f"{k[6:]} {v/T*100:.1f}%" for k,v in tot.most_common(8)))
    I = sum(ops.values())
    print('  instr (warp-level) total %.0f:' % I, ', '.join(f"{k} {v/I*100:.1f}%" for k,v in ops.most_common(14)))
    print('  L1 tag requests global by op:', ', '.join(f"{k} {v:.0f}" for k,v in l1.most_common(6)))
