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
V = ('base', 'q6', 'q6b', 'q6c')
print('%-20s' % 'shape' + ''.join('%18s' % (v + ' us') for v in V) + ''.join('%9s' % (v + '/base') for v in V[1:]))
for s in shapes:
    xs = [t[(s, v)] or [float('nan')] for v in V]
    m = [sum(x) / len(x) for x in xs]
    print('%-20s' % s + ''.join('%18s' % ' / '.join('%.2f' % y for y in x) for x in xs) + ''.join('%9.3f' % (y / m[0]) for y in m[1:]))
