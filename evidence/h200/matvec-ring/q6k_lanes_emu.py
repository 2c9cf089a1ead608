# q6k_lanes_emu.py — the lane mapping of q6k_add (kernels/quant.cuh, branch q6k-loads) emulated on the CPU:
# each Q6_K unit's integer sum from TQ6_K's lane-per-unit loads (vals/wdot) against the 8-lane
# scheme (16-byte ql/qh runs, two 16-weight groups a lane, xor-1 exchange, routing to lane j).
# Run: python3 q6k_lanes_emu.py (2,000 random blocks, activations and block sums).
import random, struct
def i8(x): return x - 256 if x >= 128 else x
def words(b, off, n): return [struct.unpack_from('<I', b, off + 4*i)[0] for i in range(n)]
def dp4a(w, a, s):
    for k in range(4): s += i8((w >> (8*k)) & 0xFF) * i8((a >> (8*k)) & 0xFF)  # __dp4a, both signed
    return s
def dot16u(ws, xs, s=0):
    for w, x in zip(ws, xs): s = dp4a(w, x, s)
    return s
def old_isum(blk, act, bs, j):
    h, k = j // 4, j % 4
    ql = words(blk, 64*h + 32*(k & 1), 8); qh = words(blk, 128 + 32*h, 8)
    q = [(((x if k < 2 else x >> 4) & 0x0F0F0F0F) | (((y >> (2*k)) & 0x03030303) << 4)) for x, y in zip(ql, qh)]
    base = 32*j
    x0 = words(act, base, 4); x1 = words(act, base + 16, 4)
    s0 = dot16u(q[:4], x0); s1 = dot16u(q[4:], x1)
    sc0, sc1 = i8(blk[192 + 2*j]), i8(blk[192 + 2*j + 1])
    return sc0 * (s0 - 32*bs[2*j]) + sc1 * (s1 - 32*bs[2*j + 1])
def new_isums(blk, act, bs):
    terms = []
    for t in range(8):
        h, kk, half = t >> 2, (t >> 1) & 1, t & 1
        jA, jB = 4*h + kk, 4*h + kk + 2
        ql = words(blk, 16*t, 4); qh = words(blk, 128 + 32*h + 16*half, 4)
        qa, qb = [], []
        for x, y in zip(ql, qh):
            s = y >> (2*kk)
            qa.append((x & 0x0F0F0F0F) | ((s & 0x03030303) << 4))
            qb.append(((x >> 4) & 0x0F0F0F0F) | (((s >> 4) & 0x03030303) << 4))
        xa = words(act, 32*jA + 16*half, 4); xb = words(act, 32*jB + 16*half, 4)
        sA, sB = dot16u(qa, xa), dot16u(qb, xb)
        tA = i8(blk[192 + 2*jA + half]) * (sA - 32*bs[2*jA + half])
        tB = i8(blk[192 + 2*jB + half]) * (sB - 32*bs[2*jB + half])
        terms.append((tA, tB, half))
    iA = [terms[t][0] + terms[t ^ 1][0] for t in range(8)]
    iB = [terms[t][1] + terms[t ^ 1][1] for t in range(8)]
    send = [iB[t] if terms[t][2] else iA[t] for t in range(8)]
    out = []
    for j in range(8):
        src = (j & 4) | ((j & 1) << 1) | ((j >> 1) & 1)
        out.append(send[src])
    return out
random.seed(1)
for trial in range(2000):
    blk = bytes(random.randrange(256) for _ in range(210))
    act = bytes(random.randrange(256) for _ in range(256))
    bs = [random.randrange(-2048, 2048) for _ in range(16)]
    new = new_isums(blk, act, bs)
    for j in range(8):
        assert new[j] == old_isum(blk, act, bs, j), (trial, j)
print("2000 random super-blocks: every unit's isum equal (old lane-per-unit vs coalesced 8-lane)")
