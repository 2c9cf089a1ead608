# CPU emulation of TQ4_K's decode unit after branch q4k-consume (kernels/quant.cuh: scale_pair_packed,
# the high nibbles in place with an unsigned dp4a and >> 4, the mins by dp2a) against main's branchy
# scale_pair_w and wsums: every unit's scale/min pairs and integer sums must be equal (so the same bits).
# Run: python3 emu_q4k.py
import random, struct
def byte_perm(x, y, s):
    b = list(struct.pack('<II', x, y)); out = 0
    for i in range(4): out |= b[(s >> (4 * i)) & 7] << (8 * i)
    return out
def ref_pair(sb, j):  # k_scale_min
    if j < 4: return sb[j] & 63, sb[j + 4] & 63
    return (sb[j + 4] & 0x0F) | ((sb[j - 4] >> 6) << 4), (sb[j + 4] >> 4) | ((sb[j] >> 6) << 4)
def new_pair(w0, w1, w2, k):
    hi = k >= 2; t = 2 * (k & 1)
    sel = ((4 if hi else 0) + t) * 0x11 + 0x10 + t * 0x1100 + 0x1000
    mlo = 0x0F0F if hi else 0x3F3F; mhi = 0x3030 if hi else 0; ms = 4 if hi else 0
    ps = byte_perm(w0, w2, sel); pm = byte_perm(w1, w2, sel)
    sc = (ps & mlo) | ((ps >> 18) & mhi); m = ((pm >> ms) & mlo) | ((pm >> 18) & mhi)
    return sc, m
def s8(b): return b - 256 if b >= 128 else b
def dp4a(w, a, s, wsigned):
    for i in range(4):
        wb = (w >> (8 * i)) & 0xFF; ab = s8((a >> (8 * i)) & 0xFF)
        s += (s8(wb) if wsigned else wb) * ab
    return s
def s16(v): v &= 0xFFFF; return v - 65536 if v >= 32768 else v
rng = random.Random(11); n = 0
cases = [(bytes(rng.randrange(256) for _ in range(144)), rng.randrange(4), [rng.randrange(-128, 128) for _ in range(64)]) for _ in range(20000)]
# extremes: every byte 0xFF (nibbles 15, scales and mins 63) with activations all -128 or all 127, every k
cases += [(bytes([0xFF] * 144), k, [a] * 64) for k in range(4) for a in (-128, 127)]
for blk, k, act in cases:
    sbytes = blk[4:16]
    w0, w1, w2 = struct.unpack('<III', sbytes)
    r0, r1 = ref_pair(sbytes, 2 * k), ref_pair(sbytes, 2 * k + 1)
    sc, m = new_pair(w0, w1, w2, k)
    assert (sc & 0xFF, sc >> 8, m & 0xFF, m >> 8) == (r0[0], r1[0], r0[1], r1[1]), (k, sbytes.hex())
    aw = [struct.unpack('<I', bytes(v & 0xFF for v in act[4 * i:4 * i + 4]))[0] for i in range(16)]
    bp = (sum(act[:32]), sum(act[32:]))  # the two groups' block sums
    qs = struct.unpack('<8I', blk[16 + 32 * k:16 + 32 * k + 32])
    # reference (main): lo/hi nibbles as values, signed dp4a
    lo = [x & 0x0F0F0F0F for x in qs]; hi = [(x >> 4) & 0x0F0F0F0F for x in qs]
    s0 = 0
    for i in range(8): s0 = dp4a(lo[i], aw[i], s0, True)
    s1 = 0
    for i in range(8): s1 = dp4a(hi[i], aw[8 + i], s1, True)
    ref = (r0[0] * s0 + r1[0] * s1, r0[1] * bp[0] + r1[1] * bp[1])
    # new: high nibbles in place, unsigned dp4a, >> 4; dp2a on packed block sums
    h16 = [x & 0xF0F0F0F0 for x in qs]
    t1 = 0
    for i in range(8): t1 = dp4a(h16[i], aw[8 + i], t1, False)
    assert t1 % 16 == 0 and -2**31 <= t1 < 2**31
    n1 = t1 >> 4
    bpw = (bp[0] & 0xFFFF) | ((bp[1] & 0xFFFF) << 16)
    msum = s16(bpw) * (m & 0xFF) + s16(bpw >> 16) * ((m >> 8) & 0xFF)  # dp2a.lo: bytes 0, 1 of m, signed
    assert s8(m & 0xFF) == (m & 0xFF) and s8((m >> 8) & 0xFF) == ((m >> 8) & 0xFF)
    new = ((sc & 0xFF) * s0 + (sc >> 8) * n1, msum)
    assert new == ref, (new, ref); n += 1
print(f"{n} units (20,000 random, 8 extreme): scale/min pairs and integer sums equal to main's")
