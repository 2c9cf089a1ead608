import sys, glob, re, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1] + '/mvbulk_*_*.txt')):
    v = f.split('mvbulk_')[1].split('_')[0]
    shape = None
    for line in open(f):
        if re.match(r'^[0-9]', line): shape = line.split()[0]
        m = re.match(r'^\s+base\s+([0-9.]+) us', line)
        if m and shape: t[(shape, v)].append(float(m.group(1)))
shapes = sorted({k[0] for k in t}, key=lambda s: list(k[0] for k in t).index(s))
print('%-20s %16s %16s %16s %8s %8s' % ('shape', 'base us', 'q6 us', 'q6b us', 'q6/base', 'q6b/base'))
for s in shapes:
    b, q, n = (t[(s, v)] or [1.0] for v in ('base', 'q6', 'q6b'))
    mb, mq, mn = (sum(x) / len(x) for x in (b, q, n))
    print('%-20s %16s %16s %16s %8.3f %8.3f' % (s, ' / '.join('%.2f' % x for x in b), ' / '.join('%.2f' % x for x in q), ' / '.join('%.2f' % x for x in n), mq / mb, mn / mb))
