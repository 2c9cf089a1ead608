// attn_prefill_mma.cuh — prefill attention on tensor cores over an f16 KV cache (included by
// attention.cu; kernel attention_mma_f16, chosen by the scheduler for an f16 cache and a head
// dim that is a multiple of 16, at most ATT_MAX_HD). Same tiles and online softmax as
// attention_impl, with both products on f16 MMAs (mma.sync m16n8k16, f32 accumulators).
//
// Semantics: f32, as the reference and attention_impl — not f16 attention. K and V come from
// an f16 cache, so they are exact f16 operands. Q and P are f32; each is split into two f16
// parts, x = hi + lo, hi = f16(x), lo = f16(x − hi), and both parts multiply the same K or V
// fragment into the same f32 accumulator: x is carried to ~22 bits, a relative error of
// ~2^-22, next to the f32 rounding of the sums themselves. So the tensor cores change the
// summation order and the rounding of the dot products' partial sums, as attention_impl's
// FMA order does, and the results stay inside gpu_parity's f32 band (tests/backend_ops.rs).
// The softmax weights come from exp_f32 (ex2.approx of x·log2 e, within ~2^-20 relative
// where they matter), not libm's expf: the same order of error as the splits.
// To keep the parts of a row's large components normal f16 numbers (a small component's lo
// part may be subnormal: an absolute error below 2^-25 after the scaling, against a largest
// component of at least 2^14 for Q, and P's sum l of at least 2^10):
// - each Q row is scaled by 2^e (exact), e chosen so its largest |q| is in [2^14, 2^15); the
//   score of a key is then (q'·k)·2^-e (exact again), times scale, as the reference;
// - P ∈ [0, 1] is scaled by 2^10 before the split, and O by 2^-10 before the division by l
//   (l itself is summed from the unsplit f32 P).
//
// Why it is fast: attention_impl spends 2·hd FP32 FMAs per (query row, key) pair on CUDA
// cores. Here a warp takes 16 query rows; per tile of 64 keys it issues hd MMAs for S and hd
// for O (half of each for the lo parts), 4,096 FLOP each, on units with many times the f32
// FMA rate (7B, one layer at depth 7,680: 0.87 ms against 3.61 ms on CUDA cores). K/V tiles
// arrive by cp.async, double-buffered where that costs no resident CTAs (host:
// src/exec/cuda/geometry.rs, attention_mma_tile; on the H200 one stage and three CTAs per SM
// win), so the next tile streams in while the current one is multiplied.
//
// CTA: 16·W rows (W = blockDim.x / 32 warps) of the T·G (query row t, head h of KV group
// blockIdx.y) pairs, r = t·G + (h − kvh·G), latest rows first (blockIdx.x reversed), as
// attention_impl. Shared memory (bytes): per row the inverse Q scale (float) at 0 and the
// causal limit (int) at 256; from ATT_MMA_HEAD_BYTES, Q hi then Q lo [16W][hd + 8] f16; then
// per stage K then V [ATT_MMA_BK][hd + 8] f16 (rows of hd + 8 halves: the 8 row addresses of
// an ldmatrix fall in distinct bank groups).

// D = A·B + D, A 16×16 f16 (rows), B 16×8 f16 (columns), D f32. Fragments (PTX ISA), g =
// lane / 4, q = lane % 4: a[0] = row g, k 2q, 2q+1; a[1] = row g+8; a[2], a[3] = the same
// rows at k + 8. b0 = k 2q, 2q+1 of column g; b1 = k + 8. d[0], d[1] = row g, columns 2q,
// 2q+1; d[2], d[3] = row g+8.
__device__ __forceinline__ void mma_f16(float d[4], const u32 a[4], u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The f16 pair (x0 low, x1 high) nearest to (x0, x1), and the pair nearest to what it left.
__device__ __forceinline__ void split_h2(float x0, float x1, u32& hi, u32& lo) {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(hi) : "f"(x1), "f"(x0));
    const float h0 = f16_to_f32((u16)(hi & 0xffffu)), h1 = f16_to_f32((u16)(hi >> 16));
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(lo) : "f"(x1 - h1), "f"(x0 - h0));
}

// exp(x) as 2^(x·log2 e) on the special-function unit: x·log2 e rounds once (an absolute
// error of |x|·2^-24 in the exponent) and ex2.approx is within 2 ulp, so for the weights
// that matter (x in [-16, 0]) the relative error is about 2^-20 at most — against libm's expf, a
// few instructions instead of a dozen. −inf gives 0. Measured against the interpreter by
// tests/backend_ops.rs (the f32 attention band).
__device__ __forceinline__ float exp_f32(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(__fmul_rn(x, 1.4426950408889634f)));
    return y;
}

// 2^e as a float, e in [-126, 127].
__device__ __forceinline__ float pow2f(int e) { return __uint_as_float((u32)(127 + e) << 23); }

// One CTA; ND16 = head dims / 16 at most (registers for O are sized by it).
template <int ND16>
__device__ __forceinline__ void attention_mma_run(const AttnMmaArgs& g) {
    constexpr int BK = ATT_MMA_BK;
    extern __shared__ float4 att_smem[];
    u8* sm = (u8*)att_smem;
    const int hd = g.head_dim, rs = hd + ATT_MMA_PAD, nd16 = hd / 16, nd4 = hd / 4;
    const int G = g.n_head / g.n_head_kv, kvw = g.n_head_kv * hd, kvh = blockIdx.y;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nt = blockDim.x;
    const int rows = nt / 2, total = g.T * G;  // 16 rows per warp
    const int r0 = (gridDim.x - 1 - blockIdx.x) * rows;
    const int pos0 = *(const int*)g.pos;
    const int n_keys = pos0 + (min(r0 + rows, total) - 1) / G + 1;
    const int n_tiles = (n_keys + BK - 1) / BK;
    float* qinv = (float*)sm;
    int* lim = (int*)(sm + 256);
    u16* Qh = (u16*)(sm + ATT_MMA_HEAD_BYTES);
    u16* Ql = Qh + rows * rs;
    u16* KV0 = Ql + rows * rs;  // stage s: K at KV0 + s·2·BK·rs, V BK·rs after it
    const int stage = 2 * BK * rs;

    // Stage keys k0.. of K and V into stage s; keys past n_keys are zeros (masked, and
    // 0·0 adds nothing; their copies read nothing and name key 0). The tile is BK rows of
    // cpr 16-byte pieces; thread tid copies pieces tid, tid + nt, ... When cpr divides nt
    // (head dims 64 and 128) a thread keeps one column and steps its row, its source and
    // its shared address by constants; otherwise it divides.
    const int cpr = hd / 8;
    const int j_step = nt / cpr, j_first = tid / cpr, c_first = tid - j_first * cpr;
    const bool fixed_column = j_step * cpr == nt;
    const u16* k_head = (const u16*)g.k_cache + kvh * hd;
    const u16* v_head = (const u16*)g.v_cache + kvh * hd;
    const u32 kv_sm = smem_addr(KV0), v_sm = (u32)(BK * rs * 2);
    auto issue = [&](int k0, int s) {
        if (fixed_column) {
            const size_t step = (size_t)j_step * kvw;
            const size_t first = (size_t)(k0 + j_first) * kvw + 8 * c_first;
            const u16* kp = k_head + first;
            const u16* vp = v_head + first;
            u32 d = kv_sm + (u32)((s * stage + j_first * rs + 8 * c_first) * 2);
            for (int j = j_first; j < BK; j += j_step) {
                const bool in = k0 + j < n_keys;
                cp_async16_at(d, in ? kp : k_head, in ? 16 : 0);
                cp_async16_at(d + v_sm, in ? vp : v_head, in ? 16 : 0);
                kp += step;
                vp += step;
                d += (u32)(j_step * rs * 2);
            }
        } else {
            for (int i = tid; i < BK * cpr; i += nt) {
                const int j = i / cpr, c = i - j * cpr, key = k0 + j;
                const bool in = key < n_keys;
                const size_t e = (size_t)(in ? key : 0) * kvw + 8 * c;
                const u32 d = kv_sm + (u32)((s * stage + j * rs + 8 * c) * 2);
                cp_async16_at(d, k_head + e, in ? 16 : 0);
                cp_async16_at(d + v_sm, v_head + e, in ? 16 : 0);
            }
        }
        cp_async_commit();
    };
    issue(0, 0);

    // The CTA's query rows: two threads per row, scaled by 2^e and split into f16 hi + lo
    // (rows past the end: zeros, and key 0 only, so no NaN).
    {
        const int row = tid >> 1, half = tid & 1, r = r0 + row;
        const bool live = r < total;
        const float4* src = (const float4*)g.q + ((size_t)(r / G) * g.n_head + kvh * G + r % G) * nd4;
        float mx = 0.0f;
        if (live)
            for (int c = half; c < nd4; c += 2) {
                float4 v = src[c];
                mx = fmaxf(mx, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
            }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        int e = 0;
        if (mx > 0.0f && mx <= 3.0e38f) e = min(max(14 - ((int)((__float_as_uint(mx) >> 23) & 255u) - 127), -100), 100);
        const float sc = pow2f(e);
        for (int c = half; c < nd4; c += 2) {
            float4 v = live ? src[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            uint2 h, l;
            split_h2(v.x * sc, v.y * sc, h.x, l.x);
            split_h2(v.z * sc, v.w * sc, h.y, l.y);
            *(uint2*)(Qh + row * rs + 4 * c) = h;
            *(uint2*)(Ql + row * rs + 4 * c) = l;
        }
        if (half == 0) {
            qinv[row] = pow2f(-e);
            lim[row] = live ? pos0 + r / G : 0;
        }
    }
    __syncthreads();

    const int gq = lane >> 2, q4 = lane & 3;
    const int ra = warp * 16 + gq, rb = ra + 8;
    const int lim_a = lim[ra], lim_b = lim[rb];
    // A score is (q'·k)·2^-e·scale: one rounding of the exact product whether 2^-e (exact)
    // multiplies first or into the scale, so qs = 2^-e·scale is taken once per row.
    const float qs_a = qinv[ra] * g.scale, qs_b = qinv[rb] * g.scale;
    // The warp's last visible key (later tiles skip the math) and the last key every row
    // of the warp sees (tiles up to it need no causal mask).
    int wlim = max(lim_a, lim_b), wall = min(lim_a, lim_b);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        wlim = max(wlim, __shfl_xor_sync(0xffffffffu, wlim, o));
        wall = min(wall, __shfl_xor_sync(0xffffffffu, wall, o));
    }
    // ldmatrix row addresses (bytes): Q 16×16 fragments (rows l % 16, dims 8(l / 16)); K for
    // two 8-key column tiles (keys 8(l / 16) + l % 8, dims 8((l / 8) % 2)); V transposed for
    // two 8-dim column tiles (keys 8((l / 8) % 2) + l % 8, dims 8(l / 16)).
    const u32 qh_at = smem_addr(Qh + (warp * 16 + (lane & 15)) * rs + (lane >> 4) * 8);
    const u32 ql_at = qh_at + (u32)(rows * rs * 2);
    const u32 kv_at = kv_sm;
    const u32 k_off = (u32)((((lane >> 4) * 8 + (lane & 7)) * rs + ((lane >> 3) & 1) * 8) * 2);
    const u32 v_off = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * rs + (lane >> 4) * 8) * 2 + BK * rs * 2);

    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;
    float o[2 * ND16][4];
#pragma unroll
    for (int n = 0; n < 2 * ND16; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

    for (int it = 0; it < n_tiles; it++) {
        const int k0 = it * BK;
        if (g.stages > 1 && it + 1 < n_tiles) {
            issue(k0 + BK, (it + 1) & 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const u32 kb = kv_at + (u32)((g.stages > 1 ? (it & 1) : 0) * stage * 2);
        if (k0 <= wlim) {
            // S = Q·Kᵀ: 16 rows × 64 keys, Q hi and lo into the same accumulators.
            float s[8][4];
#pragma unroll
            for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll 2
            for (int ks = 0; ks < nd16; ks++) {
                u32 ah[4], al[4];
                ldsm4(qh_at + ks * 32, ah);
                ldsm4(ql_at + ks * 32, al);
#pragma unroll
                for (int jp = 0; jp < 4; jp++) {
                    u32 b[4];
                    ldsm4(kb + k_off + (u32)((jp * 16 * rs + ks * 16) * 2), b);
                    mma_f16(s[2 * jp], ah, b[0], b[1]);
                    mma_f16(s[2 * jp], al, b[0], b[1]);
                    mma_f16(s[2 * jp + 1], ah, b[2], b[3]);
                    mma_f16(s[2 * jp + 1], al, b[2], b[3]);
                }
            }
            // Online softmax for rows a (d[0], d[1]) and b (d[2], d[3]); a row's 64 keys are
            // spread over the 4 lanes of its quad. Scores past a row's causal limit are −inf
            // (only tiles that reach past wall have any). Maxima and sums by trees (short
            // dependency chains: this part issues most of the kernel's instructions).
            if (k0 + BK - 1 <= wall) {
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    s[j][0] = __fmul_rn(s[j][0], qs_a);
                    s[j][1] = __fmul_rn(s[j][1], qs_a);
                    s[j][2] = __fmul_rn(s[j][2], qs_b);
                    s[j][3] = __fmul_rn(s[j][3], qs_b);
                }
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int key = k0 + 8 * j + 2 * q4 + e;
                        s[j][e] = key <= lim_a ? __fmul_rn(s[j][e], qs_a) : -INFINITY;
                        s[j][2 + e] = key <= lim_b ? __fmul_rn(s[j][2 + e], qs_b) : -INFINITY;
                    }
            }
            float t_a[8], t_b[8];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                t_a[j] = fmaxf(s[j][0], s[j][1]);
                t_b[j] = fmaxf(s[j][2], s[j][3]);
            }
#pragma unroll
            for (int w = 4; w > 0; w >>= 1)
#pragma unroll
                for (int j = 0; j < w; j++) {
                    t_a[j] = fmaxf(t_a[j], t_a[j + w]);
                    t_b[j] = fmaxf(t_b[j], t_b[j + w]);
                }
            float mx_a = t_a[0], mx_b = t_b[0];
#pragma unroll
            for (int x = 1; x <= 2; x <<= 1) {
                mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, x));
                mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, x));
            }
            // Key 0 is in every row's first tile, so the new max is finite from it on.
            const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
            const float c_a = exp_f32(m_a - mn_a), c_b = exp_f32(m_b - mn_b);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                s[j][0] = exp_f32(s[j][0] - mn_a);
                s[j][1] = exp_f32(s[j][1] - mn_a);
                s[j][2] = exp_f32(s[j][2] - mn_b);
                s[j][3] = exp_f32(s[j][3] - mn_b);
                t_a[j] = s[j][0] + s[j][1];
                t_b[j] = s[j][2] + s[j][3];
            }
#pragma unroll
            for (int w = 4; w > 0; w >>= 1)
#pragma unroll
                for (int j = 0; j < w; j++) {
                    t_a[j] += t_a[j + w];
                    t_b[j] += t_b[j + w];
                }
            float sum_a = t_a[0], sum_b = t_b[0];
#pragma unroll
            for (int x = 1; x <= 2; x <<= 1) {
                sum_a += __shfl_xor_sync(0xffffffffu, sum_a, x);
                sum_b += __shfl_xor_sync(0xffffffffu, sum_b, x);
            }
            l_a = __fmaf_rn(l_a, c_a, sum_a);
            l_b = __fmaf_rn(l_b, c_b, sum_b);
            m_a = mn_a;
            m_b = mn_b;
            // Once the maxima settle (most tiles of a long prompt) every factor is 1: skip.
            if (__any_sync(0xffffffffu, c_a != 1.0f || c_b != 1.0f)) {
#pragma unroll
                for (int n = 0; n < 2 * ND16; n++) {
                    o[n][0] *= c_a;
                    o[n][1] *= c_a;
                    o[n][2] *= c_b;
                    o[n][3] *= c_b;
                }
            }
            // O += P·V: P (2^10-scaled, hi and lo) is the A operand straight from the S
            // accumulators — keys 16kk.. are S column tiles 2kk and 2kk + 1.
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                u32 ph[4], pl[4];
                split_h2(s[2 * kk][0] * 1024.0f, s[2 * kk][1] * 1024.0f, ph[0], pl[0]);
                split_h2(s[2 * kk][2] * 1024.0f, s[2 * kk][3] * 1024.0f, ph[1], pl[1]);
                split_h2(s[2 * kk + 1][0] * 1024.0f, s[2 * kk + 1][1] * 1024.0f, ph[2], pl[2]);
                split_h2(s[2 * kk + 1][2] * 1024.0f, s[2 * kk + 1][3] * 1024.0f, ph[3], pl[3]);
#pragma unroll
                for (int dp = 0; dp < ND16; dp++) {
                    if (dp < nd16) {
                        u32 b[4];
                        ldsm4_t(kb + v_off + (u32)((kk * 16 * rs + dp * 16) * 2), b);
                        mma_f16(o[2 * dp], ph, b[0], b[1]);
                        mma_f16(o[2 * dp], pl, b[0], b[1]);
                        mma_f16(o[2 * dp + 1], ph, b[2], b[3]);
                        mma_f16(o[2 * dp + 1], pl, b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads();  // the stage is free for the tile after next
        if (g.stages == 1 && it + 1 < n_tiles) issue(k0 + BK, 0);
    }
    // out = O / l, one division per element as the reference (O·2^-10 is exact).
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int r = r0 + (half ? rb : ra);
        if (r >= total) continue;
        const float l = half ? l_b : l_a;
        float* dst = (float*)g.out + ((size_t)(r / G) * g.n_head + kvh * G + r % G) * hd + 2 * q4;
#pragma unroll
        for (int n = 0; n < 2 * ND16; n++)
            if (n < 2 * nd16)
                *(float2*)(dst + 8 * n) =
                    make_float2(o[n][2 * half] * (1.0f / 1024.0f) / l, o[n][2 * half + 1] * (1.0f / 1024.0f) / l);
    }
}

__device__ void attention_mma_impl(const AttnMmaArgs& g) {
    if (g.head_dim > 64)
        attention_mma_run<ATT_MAX_HD / 16>(g);
    else
        attention_mma_run<4>(g);
}
