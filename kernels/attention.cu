// attention.cu — causal grouped-query attention over a layer's KV cache: prefill (T query
// rows at positions pos0.., attention_impl, and on tensor cores over an f16 cache,
// attention_mma_impl in attn_prefill_mma.cuh) and decode (one query, attention_split_impl).
// CPU reference: src/exec/interp/ops.rs (attention): s_j = (q·k_j)·scale, e_j = exp(s_j − max),
// out = Σ e_j·v_j / Σ e_j, f32 throughout. Both kernels keep an online softmax (running max m
// and sum l; when the max grows, l and the weighted-V accumulators are rescaled by
// exp(m_old − m_new)), f32 on CUDA cores: only the summation order differs from the
// reference. The cache element (f32 or f16) is the template parameter KV (numerics.cuh);
// f16 values widen exactly, so the arithmetic after the load is the same for both.
#include "attn_decode.cuh"
#include "attn_prefill_mma.cuh"

// ---- Prefill: flash-attention tiles on CUDA cores ------------------------------------------
// Why it is fast. Take the 7B (28 query heads, 4 KV heads, head_dim 128, 28 layers) and a
// prompt of T = 8,192 tokens. The arithmetic is fixed: 4·hd FLOP per (query, key) pair
// (q·k and p·v), T²/2 causal pairs per head: 2·T²·hd·28·28 = 13.5 TFLOP.
// - Before, a CTA per (head, query row) read every K and V row up to its position: per layer
//   28 heads × T²/2 rows × 1 KB (K + V, f32) = 962 GB, 27 TB for the prompt, from L2 at
//   ~9 TB/s: ~3 s, bound by L2 traffic, not by the 67 TFLOPS of f32 FMA units.
// - Here a CTA takes 64 (query row, head) pairs of one KV group (~9 query rows × its 7
//   heads) and streams the group's K/V rows once through shared memory in tiles of ATT_BK
//   keys: per layer 8,192·7/64 × 4 = 3,584 CTAs × ~4,100 keys × 1 KB = 15 GB (7.5 GB with
//   an f16 cache), 64x less, 0.42 TB for the prompt. Each 64 × 64 tile then costs
//   2 · 64·64·128 FMAs from shared memory against 64 KB of K/V (32 KB f16): with 4×4 rows ×
//   keys (and 4 rows × 8 dims) held in registers and 16-byte shared reads, the FMA units,
//   not memory, set the pace: ~0.4–0.6 s for the prompt at 35–50% of the f32 peak.
// Rows: the T·G (query row t, head h of the group) pairs of KV head blockIdx.y, flattened as
// r = t·G + (h − kvh·G); a CTA of n threads takes n/4 consecutive rows (blockIdx.x, latest
// rows — the most keys — first, so the short ones fill the tail) and walks keys 0 ..
// pos0 + t_last in tiles of ATT_BK:
//   stage the K and V tile in shared memory (widened to f32) → S = Q·Kᵀ (thread (ty, tx)
//   holds rows 4ty..4ty+3 × keys tx, tx+16, tx+32, tx+48) → causal mask, scale, row max over
//   the row's 16 threads, rescale, P = exp(S − m) into shared memory (over the K tile) →
//   O = O·corr + P·V (thread (ty, tx) holds rows 4ty.. × float4 columns tx and tx+16).
// Shared memory (dynamic, laid out by the host: src/exec/cuda/geometry.rs, attention_tile):
//   Q [rows][hd + ATT_PAD] at 0, K [ATT_BK][hd + ATT_PAD] then P [rows][ATT_BK + ATT_PAD]
//   at float offset kp_at, V [ATT_BK][hd] at v_at.
template <class KV>
__device__ void attention_impl(const AttnArgs& g) {
    constexpr int RM = ATT_ROWS_PER_THREAD, KT = ATT_KEY_THREADS;
    extern __shared__ float4 att_smem[];
    float* sm = (float*)att_smem;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, kvw = g.n_head_kv * hd;
    const int kvh = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
    const int tx = tid % KT, ty = tid / KT;
    const int rows = nt / KT * RM, total = g.T * G;
    const int r0 = (gridDim.x - 1 - blockIdx.x) * rows;
    const int pos0 = *(const int*)g.pos;
    const int n_keys = pos0 + (min(r0 + rows, total) - 1) / G + 1;
    const int qs4 = (hd + ATT_PAD) / 4, ps4 = (ATT_BK + ATT_PAD) / 4;
    float4* Q4 = att_smem;
    float4* K4 = (float4*)(sm + g.kp_at);
    float4* P4 = K4;
    float4* V4 = (float4*)(sm + g.v_at);
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    // The CTA's query rows (rows past the end: zeros).
    for (int i = tid; i < rows * nd4; i += nt) {
        int row = i / nd4, c = i % nd4, r = r0 + row;
        float4 v = zero;
        if (r < total) v = ((const float4*)g.q)[((size_t)(r / G) * g.n_head + kvh * G + r % G) * nd4 + c];
        Q4[row * qs4 + c] = v;
    }
    // Per row of this thread: the last key it may see (causal), running max and sum, O.
    int lim[RM];
    float m[RM], l[RM];
    float4 acc[RM][2];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        int r = r0 + ty * RM + i;
        lim[i] = r < total ? pos0 + r / G : 0;  // a row past the end sees key 0 only: no NaN
        m[i] = -INFINITY;
        l[i] = 0.0f;
        acc[i][0] = acc[i][1] = zero;
    }
    for (int k0 = 0; k0 < n_keys; k0 += ATT_BK) {
        // Stage the K and V tile; keys past n_keys are zeros (masked keys then add 0·0).
        for (int i0 = tid; i0 < ATT_BK * nd4; i0 += 4 * nt) {
            float4 kr[4], vr[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                int i = i0 + u * nt, j = i / nd4;
                kr[u] = vr[u] = zero;
                if (i < ATT_BK * nd4 && k0 + j < n_keys) {
                    size_t e = (size_t)(k0 + j) * kvw + kvh * hd + 4 * (i % nd4);
                    kr[u] = KV::load4((const void*)g.k_cache, e);
                    vr[u] = KV::load4((const void*)g.v_cache, e);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                int i = i0 + u * nt;
                if (i < ATT_BK * nd4) {
                    K4[(i / nd4) * qs4 + i % nd4] = kr[u];
                    V4[i] = vr[u];
                }
            }
        }
        __syncthreads();
        // S = Q·Kᵀ for rows 4ty.. × keys tx + 16j, summed over the head dims in order.
        float s[RM][4];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#pragma unroll 1
        for (int c = 0; c < nd4; c++) {
            float4 qv[RM], kv[4];
#pragma unroll
            for (int i = 0; i < RM; i++) qv[i] = Q4[(ty * RM + i) * qs4 + c];
#pragma unroll
            for (int j = 0; j < 4; j++) kv[j] = K4[(tx + KT * j) * qs4 + c];
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) s[i][j] = f4_dot(qv[i], kv[j], s[i][j]);
        }
        // Online softmax per row: mask and scale, the tile's max over the row's 16 threads
        // (lanes of one half-warp), rescale factor, probabilities and their sum.
        float corr[RM];
#pragma unroll
        for (int i = 0; i < RM; i++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                s[i][j] = k0 + tx + KT * j <= lim[i] ? __fmul_rn(s[i][j], g.scale) : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
#pragma unroll
            for (int o = KT / 2; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            // Key 0 is in every row's first tile, so mn is finite from the first tile on.
            float mn = fmaxf(m[i], mx), sum = 0.0f;
            corr[i] = expf(m[i] - mn);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                s[i][j] = expf(s[i][j] - mn);
                sum += s[i][j];
            }
#pragma unroll
            for (int o = KT / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            l[i] = __fmaf_rn(l[i], corr[i], sum);
            m[i] = mn;
        }
        __syncthreads();  // every thread is done with the K tile: P goes over it
        float* P = (float*)P4;
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) P[(ty * RM + i) * (ATT_BK + ATT_PAD) + tx + KT * j] = s[i][j];
        __syncthreads();
        // O = O·corr + P·V over the tile's keys, in key order.
#pragma unroll
        for (int i = 0; i < RM; i++) {
            acc[i][0] = f4_scale(acc[i][0], corr[i]);
            acc[i][1] = f4_scale(acc[i][1], corr[i]);
        }
        const bool two = tx + KT < nd4;  // head dims > 64: a second float4 column
#pragma unroll 2
        for (int j4 = 0; j4 < ATT_BK / 4; j4++) {
            float4 p[RM];
#pragma unroll
            for (int i = 0; i < RM; i++) p[i] = P4[(ty * RM + i) * ps4 + j4];
#pragma unroll
            for (int jj = 0; jj < 4; jj++) {
                const float4* vr = V4 + (4 * j4 + jj) * nd4;
                if (tx < nd4) {
                    float4 v = vr[tx];
#pragma unroll
                    for (int i = 0; i < RM; i++) acc[i][0] = f4_fma(f4_at(p[i], jj), v, acc[i][0]);
                }
                if (two) {
                    float4 v = vr[tx + KT];
#pragma unroll
                    for (int i = 0; i < RM; i++) acc[i][1] = f4_fma(f4_at(p[i], jj), v, acc[i][1]);
                }
            }
        }
        __syncthreads();  // before the next tile overwrites K/P and V
    }
    // out = O / l, one division per element as the reference.
#pragma unroll
    for (int i = 0; i < RM; i++) {
        int r = r0 + ty * RM + i;
        if (r >= total) continue;
        float4* o = (float4*)g.out + ((size_t)(r / G) * g.n_head + kvh * G + r % G) * nd4;
#pragma unroll
        for (int k = 0; k < 2; k++) {
            int c = tx + KT * k;
            if (c < nd4) {
                float4 a = acc[i][k];
                o[c] = make_float4(a.x / l[i], a.y / l[i], a.z / l[i], a.w / l[i]);
            }
        }
    }
}

// ---- Decode (T = 1): split over positions, one CTA per (KV head, split) ----------------------
// The work of a CTA and the merge are in attn_decode.cuh (shared with the persistent decode
// kernel), which says why it is fast. Grid: (KV heads, n_split = ceil(SMs / KV heads)), fixed
// so the captured decode graph replays at every position; splits past the current position
// exit at once. The group's last split to finish (atomic ticket per KV head, reset by that
// CTA) merges the group's partials; a lone active split (npos ≤ per: the first nc positions)
// writes the output itself, with the merge's arithmetic (split_partial's DIRECT).
// Deferred (g.defer, a single-row step whose next launch is the attn_out matvec's `prep`):
// the splits only write their partials, and prep merges them, spread over its CTAs, before
// it quantizes the row (quantize.cu, prep_merge): no fence, ticket or merging CTA here.
// With g.seq (a batched decode step over several sequences, grid.z = rows): row
// blockIdx.z's query at position seq[z][0] attends over its own sequence's cache rows
// (from seq[z][1]), with its own partials and tickets; grid.y is then ceil(n_split / rows),
// each CTA taking splits blockIdx.y, blockIdx.y + grid.y, ...
// Before the wait (the wrapper does not wait first; programmatic launches let this kernel
// start while the Q/K/V kernel before it runs): the position — written by the host before
// the step, read through L2 — and the copies of the split's first stage of cache rows older
// than the newest. Every kernel before the Q/K/V kernel has completed by then (each waited
// for its own predecessor before it let the next one start), so those rows are final; the
// Q/K/V kernel writes only the query and the newest row, which are read after the wait. On
// the H200 this took 1.4 µs of the launch's 10.4 (7B, 576 positions; evidence/h200/attn-decode/).
template <class KV>
__device__ void attention_split_impl(const AttnSplitArgs& g0) {
    extern __shared__ float4 att_smem[];
    u8* smem = (u8*)att_smem;
    SplitHead& S = *(SplitHead*)smem;
    const int kvh = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x;
    AttnSplitArgs g = g0;
    int npos;
    if (g.seq) {
        const int z = blockIdx.z, *s = (const int*)g.seq + 2 * z;
        const size_t qbytes = (size_t)g.n_head * g.head_dim * 4;
        const size_t crow = (size_t)__ldcg(s + 1) * g.n_head_kv * g.head_dim * KV::BYTES;
        npos = __ldcg(s) + 1;
        g.q += z * qbytes;
        g.out += z * qbytes;
        g.k_cache += crow;
        g.v_cache += crow;
        g.part += (size_t)z * g.n_head * g.n_split * (g.head_dim + 4) * 4;
        g.ticket += (size_t)z * g.n_head_kv * 4;
    } else {
        npos = __ldcg((const int*)g.pos) + 1;
    }
    const int per = split_per(npos, g.n_split, g.nc);
    const int active = (npos + per - 1) / per;
    if (sp >= active) return;  // no work: exits without waiting
    const int newest = npos - 1;
    u8* stage = smem + sizeof(SplitHead);
    // Splits sp, sp + gridDim.y, ...: one in a single-row step (gridDim.y = n_split); a
    // batched step's grid layer per row has fewer CTAs than splits (the host's), so at
    // short context its rows do not launch n_split CTAs each that have nothing to do. Each
    // split's partial and the merge are the same either way, so the same bits.
    for (int s = sp; s < active; s += gridDim.y) {
        const int j0 = s * per, j1 = min(j0 + per, npos);
        if (s == sp) {
            split_stage<KV>(g, stage, kvh, j0, j1, newest);  // the first stage but the newest row
            grid_dep_enter();
            if (newest < j0 + g.nc) split_stage_row<KV>(g, stage, kvh, j0, newest);
        }
        if (active == 1) {
            split_partial<KV, true>(g, smem, kvh, s, npos, per, s == sp);
            return;
        }
        split_partial<KV>(g, smem, kvh, s, npos, per, s == sp);
        if (g.defer) continue;  // prep merges the partials (quantize.cu, prep_merge)
        // The group's last split to get here merges the partials (read through L2).
        __threadfence();
        __syncthreads();
        if (tid == 0) S.last = atomicAdd((unsigned*)g.ticket + kvh, 1u) == (unsigned)(active - 1);
        __syncthreads();
        if (S.last) {
            __threadfence();
            split_merge(g, smem, kvh, active);
            if (tid == 0) ((unsigned*)g.ticket)[kvh] = 0;
            return;
        }
    }
}
