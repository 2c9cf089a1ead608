// quantize.cu — activation preparation. The quantization is bit-identical to the CPU's
// (quantize_q8_0 / quantize_q8_k in src/quant/act.rs, through numerics.cuh) for the same
// f32 input; prep's RMSNorm prologue (rms_norm in src/exec/interp/ops.rs) sums the squares
// in f64 in another order, so its output can differ in the last bit, which is why fused
// groups have their own q8 band (q8_fused_norm in contracts/gpu_parity.yaml).
// - quantize: T rows to Q8_0 / Q8_K in global memory for the prefill GEMMs (a CTA a row);
// - prep: one row (decode; a row per grid layer in a batched step), optionally RMSNorm-ed first — the fused norm prologue of the
//   decode groups — written as f32 and/or Q8_0 and/or Q8_K for the matvec kernels, spread
//   over many CTAs (each CTA recomputes the row's RMS scale, then quantizes its blocks);
// - prep_merge: prep for the attn_out matvec that first merges decode attention's partials
//   into the row (the deferred merge).
#include "quant.cuh"
#include "attn_decode.cuh"

__device__ void quantize_impl(const QuantizeArgs& g) {
    int t = blockIdx.x, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const float* x = (const float*)g.x + (size_t)t * g.K;
    if (g.q0) stage_q8_0(x, 0, 1.0f, g.K, (i8*)g.q0 + (size_t)t * g.K, (float*)g.d0 + (size_t)t * (g.K / 32), warp, nw);
    if (g.qk)
        stage_q8_k(x, 0, 1.0f, g.K, (i8*)g.qk + (size_t)t * g.K, (float*)g.dk + (size_t)t * (g.K / 256),
                   (int*)g.bs + (size_t)t * (g.K / 16), warp, nw);
}

// Brings into L1 the norm weights this thread applies below: its elements of the f32 copy,
// lane `lane` of its Q8_0 blocks (32 wide) and its eight of its Q8_K blocks (256 wide), as
// the loops of prep_impl, stage_q8_0 and stage_q8_k walk them. Weights only: the kernel
// before writes none of them, so prep issues this before its wait.
__device__ __forceinline__ void prep_norm_ahead(const PrepArgs& g, const float* nw, int first, int stride) {
    const int lane = threadIdx.x & 31;
    if (g.xf)
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.K; i += gridDim.x * blockDim.x) l1_prefetch(nw + i);
    if (g.q0)
        for (int b = first; b < g.K / 32; b += stride) l1_prefetch(nw + b * 32 + lane);
    if (g.qk)
        for (int b = first; b < g.K / 256; b += stride) l1_prefetch(nw + b * 256 + lane * 8);
}

// The deferred merge (PrepArgs.part; the engine sets it for the attn_out matvec's prep of a
// single-row decode step whose attention launch ran with AttnSplitArgs.defer): the attention
// splits wrote only their partials, and here CTA x merges output columns [x·PREP_THREADS,
// (x + 1)·PREP_THREADS), a thread a column, into x (the attention node's output) and `xs`.
// The heads the CTA spans get their merge weights from one warp each (merge_head_weights,
// as split_merge); each column is Σ_s w_s·acc_s by fmaf in split order, then / L — the
// merging CTA's arithmetic in its order (f4_fma is fmaf per component), so the same bits.
// Why: the merging CTA pulled every partial of its KV group through one SM after the last
// split finished, behind a fence and a ticket (3.6 µs of a 7B layer's attention at 4,104
// positions, evidence/h100/attn-depth/); here PREP_THREADS columns a CTA over all of prep's
// CTAs, with the kernel boundary as the only synchronization. Returns false where one split
// was active: the attention then wrote x itself (split_partial's DIRECT).
__device__ bool prep_merge(const PrepArgs& g, float* xs) {
    __shared__ float w[PREP_MERGE_W];
    __shared__ float Ls[PREP_THREADS / 32];
    const int npos = __ldcg((const int*)g.pos) + 1;
    const int per = split_per(npos, g.n_split, g.nc), active = (npos + per - 1) / per;
    if (active == 1) return false;
    const int hd = g.head_dim, tid = threadIdx.x, warp = tid >> 5;
    const int c0 = blockIdx.x * PREP_THREADS, c = c0 + tid, h0 = c0 / hd;
    const int nh = (min(c0 + PREP_THREADS, g.K) - 1) / hd - h0 + 1;  // heads spanned (≤ warps: the host's check)
    const bool mine = c < g.K;
    const float* part = (const float*)g.part;
    const size_t ps = (size_t)hd + 4;  // a partial: max, sum, 2 unused, weighted V
    const float* pc = part + (size_t)(c / hd) * g.n_split * ps + 4 + c % hd;
    // The column's first partials, loaded before the weights are known.
    const int npre = min(active, PREP_MERGE_PRE);
    float pre[PREP_MERGE_PRE];
#pragma unroll
    for (int s = 0; s < PREP_MERGE_PRE; s++)
        if (mine && s < npre) pre[s] = __ldcg(pc + s * ps);
    if (warp < nh) {
        const float L = merge_head_weights(part + (size_t)(h0 + warp) * g.n_split * ps, hd, active, w + warp * active);
        if ((tid & 31) == 0) Ls[warp] = L;
    }
    __syncthreads();
    if (mine) {
        const int hl = c / hd - h0;
        const float* wh = w + hl * active;
        float o = 0.0f;
#pragma unroll
        for (int s = 0; s < PREP_MERGE_PRE; s++)
            if (s < npre) o = fmaf(wh[s], pre[s], o);
        // The rest in chunks of PREP_MERGE_PRE, one L2 round trip a chunk: a load past the last
        // split reads the last one again (unused), so no branch guards a load and the chunk's
        // loads issue together; only the FMAs are predicated, in split order. The 1.5B at depth
        // has 65 splits; batches of 8 left five round trips on the chain
        // (evidence/h100/merge-prep/ call 3).
        for (int s0 = npre; s0 < active; s0 += PREP_MERGE_PRE) {
            float v[PREP_MERGE_PRE];
#pragma unroll
            for (int k = 0; k < PREP_MERGE_PRE; k++) v[k] = __ldcg(pc + min(s0 + k, active - 1) * ps);
#pragma unroll
            for (int k = 0; k < PREP_MERGE_PRE; k++)
                if (s0 + k < active) o = fmaf(wh[s0 + k], v[k], o);
        }
        const float v = o / Ls[hl];
        ((float*)g.x)[c] = v;
        xs[tid] = v;
    }
    __syncthreads();
    return true;
}

// Row blockIdx.y of the input (a batched decode step prepares its rows side by side:
// row b at b·K of every output, b·K/32, b·K/256, b·K/16 of the scale arrays).
// The wrapper does not wait first (KernelId::enters_in_body): the norm weights are on their
// way into L1 before the wait, so the quantization after the row's RMS scale does not wait
// on DRAM for them (a norm weight row is read once per step: never in L2 by then).
__device__ void prep_impl(const PrepArgs& g) {
    __shared__ double red[32];
    const size_t b = blockIdx.y, K = g.K;
    const float* x = (const float*)g.x + b * K;
    const float* nw = (const float*)g.norm_w;
    int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    int first = blockIdx.x * nwarps + warp, stride = gridDim.x * nwarps;
    if (nw) prep_norm_ahead(g, nw, first, stride);
    grid_dep_enter();
    float scale = nw ? block_rms_scale(x, g.K, g.eps, red) : 1.0f;
    if (g.xf)
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.K; i += gridDim.x * blockDim.x)
            ((float*)g.xf)[b * K + i] = act_in(x, nw, scale, i);
    if (g.q0) stage_q8_0(x, nw, scale, g.K, (i8*)g.q0 + b * K, (float*)g.d0 + b * (K / 32), first, stride);
    if (g.qk)
        stage_q8_k(x, nw, scale, g.K, (i8*)g.qk + b * K, (float*)g.dk + b * (K / 256), (int*)g.bs + b * (K / 16),
                   first, stride);
}

// prep_merge (KernelId::PrepMerge): `prep` for one q8 row without a norm (the attn_out
// matvec's input) whose attention left its merge here (PrepArgs.part). Each CTA quantizes
// the columns it merged, from shared memory: its eight Q8_0 blocks a warp each, or its Q8_K
// block. Where one split was active (the attention wrote x itself), it is prep without a
// norm. Its wrapper waits first: nothing here is independent of the attention.
__device__ void prep_merge_impl(const PrepArgs& g) {
    __shared__ __align__(16) float xs[PREP_THREADS];
    const int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    if (prep_merge(g, xs)) {
        const int c0 = blockIdx.x * PREP_THREADS, n = min(PREP_THREADS, g.K - c0);
        if (g.q0) stage_q8_0(xs, nullptr, 1.0f, n, (i8*)g.q0 + c0, (float*)g.d0 + c0 / 32, warp, nwarps);
        if (g.qk && warp == 0)
            stage_q8_k(xs, nullptr, 1.0f, n, (i8*)g.qk + c0, (float*)g.dk + c0 / 256, (int*)g.bs + c0 / 16, 0, 1);
        return;
    }
    const float* x = (const float*)g.x;
    const int first = blockIdx.x * nwarps + warp, stride = gridDim.x * nwarps;
    if (g.q0) stage_q8_0(x, nullptr, 1.0f, g.K, (i8*)g.q0, (float*)g.d0, first, stride);
    if (g.qk) stage_q8_k(x, nullptr, 1.0f, g.K, (i8*)g.qk, (float*)g.dk, (int*)g.bs, first, stride);
}
