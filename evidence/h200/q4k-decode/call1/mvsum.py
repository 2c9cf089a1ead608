# mvsum.py DIR V1 V2 ...: the generated kernels' times per shape and mvbulk build (files DIR/mvbulk_<v>_<rep>.txt),
# every repetition, and each build's mean against the first's.
import sys, glob, re, collections
d, vs = sys.argv[1], sys.argv[2:]
t = collections.defaultdict(list); order = []
for v in vs:
    for f in sorted(glob.glob(f'{d}/mvbulk_{v}_*.txt')):
        shape = None
        for line in open(f):
            if re.match(r'^[0-9]', line):
                shape = line.split()[0]
                if shape not in order: order.append(shape)
            m = re.match(r'^\s+base\s+([0-9.]+) us', line)
            if m and shape: t[(shape, v)].append(float(m.group(1)))
print('%-18s ' % 'shape' + ' '.join('%15s' % (v + ' us') for v in vs) + ' ' + ' '.join('%9s' % (v + '/' + vs[0]) for v in vs[1:]))
for s in order:
    means = [sum(t[(s, v)]) / len(t[(s, v)]) if t[(s, v)] else float('nan') for v in vs]
    print('%-18s ' % s + ' '.join('%15s' % ' / '.join('%.2f' % x for x in t[(s, v)]) for v in vs) + ' ' + ' '.join('%9.3f' % (m / means[0]) for m in means[1:]))
