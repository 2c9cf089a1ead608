// argmax.cu — the token choice on the device: `argmax` here, `sample` (sampled decoding)
// further down. Greedy: index of the largest logit (lowest index on
// ties, NaN never chosen; CPU twin: `argmax` in src/numerics.rs, which differs only when every
// logit is NaN: 0 there, 0x7fffffff here, which the next step refuses as outside the
// vocabulary), so only 4 bytes come back to the host per token. ARGMAX_CTAS CTAs
// each reduce a grid-strided share (4 loads in flight per thread) to one (value, index)
// pair; the last CTA to finish (atomic ticket) merges the pairs and resets the ticket, so a
// captured graph can replay it. A batched decode step takes the argmax of its rows side by
// side in one launch: grid layer blockIdx.y reads logits row y (n apart), uses its own
// scratch (pairs and ticket) and writes out[y]; each row's reduction is the one a launch
// for that row alone does.
#include "argmax.cuh"

__device__ void argmax_impl(const ArgmaxArgs& g) {
    __shared__ float bv[32];
    __shared__ int bi[32];
    __shared__ bool last;
    const int row = blockIdx.y;
    const float* x = (const float*)g.x + (size_t)row * g.n;
    float best = -INFINITY;
    int idx = 0x7fffffff;
    int stride = gridDim.x * blockDim.x;
    for (int i0 = blockIdx.x * blockDim.x + threadIdx.x; i0 < g.n; i0 += 4 * stride) {
        float v[4];
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = i0 + k * stride < g.n ? x[i0 + k * stride] : -INFINITY;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (i0 + k * stride < g.n) amax_merge(best, idx, v[k], i0 + k * stride);
    }
    block_amax(best, idx, bv, bi);
    float* pv = (float*)g.part + row * (2 * gridDim.x + 1);
    int* pi = (int*)(pv + gridDim.x);
    unsigned* ticket = (unsigned*)(pi + gridDim.x);
    if (threadIdx.x == 0) {
        pv[blockIdx.x] = best;
        pi[blockIdx.x] = idx;
        __threadfence();
        last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    best = -INFINITY;
    idx = 0x7fffffff;
    for (int c = threadIdx.x; c < gridDim.x; c += blockDim.x) amax_merge(best, idx, __ldcg(pv + c), __ldcg(pi + c));
    __syncthreads();
    block_amax(best, idx, bv, bi);
    if (threadIdx.x == 0) {
        ((int*)g.out)[row] = idx;
        chain_advance(g.chain_pos, g.chain_tokens, g.chain_ring, idx, g.n);
        *ticket = 0;
    }
}

// sample — a sampled token on the device, the host's `sample` (src/sample.rs)
// step by step for 1 < top_k ≤ SAMPLE_MAX_K, so a sampled decode step stays one captured
// graph and only 4 bytes come back (the host falls back to its own sampler otherwise):
// 1. the logits become unique 64-bit keys that order as the host's candidates: the f32
//    total order (`total_cmp`) above, the id (ascending) below. Each CTA holds
//    SAMPLE_SLICE keys in registers (SAMPLE_PER_THREAD a thread) and finds its top k by
//    radix select (8-bit digits from the top, stopping as soon as a digit's count is exactly
//    what is still needed); the last CTA to finish (atomic ticket) selects the top k of all
//    CTAs' candidates the same way and ranks them: the host's candidates, in its order;
// 2. weights w_j = exp((l_j − l_max) / T) in f64, one thread each;
// 3. one thread, in the host's order: z = Σ w, p_j = w_j / z with the running sum to top_p
//    (keep), r = u · Σ_kept p, the first kept j with r < p_0 + … + p_j.
// The f64 exp may differ from the host's libm exp in the last bit (both within an ulp), so a
// draw within ~1e-16 of a boundary could pick the neighbour; otherwise the token is the
// host's for the same logits and draw. A non-finite candidate (NaN, ±Inf) gives 0x7fffffff,
// which the host reports as an error. A batched decode step samples its rows side by side:
// row blockIdx.y reads logits row y (stride n), its own parameters, candidates and ticket,
// and writes out[y]; a greedy row (top_k 1) gets the largest logit, lowest id on ties.
#define SAMPLE_PER_THREAD (SAMPLE_SLICE / SAMPLE_THREADS)

struct SampleParams {
    double u;           // the host's uniform draw in [0, 1) (Sampler::draw)
    float temperature;  // > 0
    float top_p;        // in (0, 1]
    int top_k;          // 2 .. SAMPLE_MAX_K (1: the argmax)
    int pad;
};

__device__ __forceinline__ unsigned long long sample_key(float v, int id) {
    u32 b = __float_as_uint(v);
    u32 o = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // unsigned order = f32::total_cmp
    return ((unsigned long long)o << 32) | (unsigned long long)(0xFFFFFFFFu - (u32)id);
}
__device__ __forceinline__ float sample_key_value(unsigned long long k) {
    u32 o = (u32)(k >> 32);
    return __uint_as_float((o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o);
}
__device__ __forceinline__ int sample_key_id(unsigned long long k) { return (int)(0xFFFFFFFFu - (u32)k); }

struct SampleSmem {
    unsigned hist[256];
    unsigned long long sel[SAMPLE_MAX_K], sorted[SAMPLE_MAX_K];
    double w[SAMPLE_MAX_K];
    int digit, need, done, count;
    bool last;
};

// Block-wide radix select over the threads' keys (unique wherever the top k ends: the k-th
// largest key occurs once): (prefix, mask) such that exactly k keys have
// (key & mask) >= prefix, 1 <= k <= the number of keys.
__device__ void sample_select(const unsigned long long (&key)[SAMPLE_PER_THREAD], int k, SampleSmem& sm,
                              unsigned long long& prefix, unsigned long long& mask) {
    prefix = 0;
    mask = 0;
    int need = k;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) sm.hist[b] = 0;
        __syncthreads();
#pragma unroll
        for (int e = 0; e < SAMPLE_PER_THREAD; e++)
            if ((key[e] & mask) == prefix) atomicAdd(&sm.hist[(u32)(key[e] >> shift) & 255u], 1u);
        __syncthreads();
        if (threadIdx.x < 32) {
            // Lane l counts digits 255 − 8l down to 248 − 8l; keys in higher digits come first.
            const int lane = threadIdx.x;
            u32 c[8], s = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                c[i] = sm.hist[255 - 8 * lane - i];
                s += c[i];
            }
            u32 incl = s;
            for (int o = 1; o < 32; o <<= 1) {
                u32 v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += v;
            }
            u32 a = incl - s;
            if (a < (u32)need && (u32)need <= incl) {
                for (int i = 0; i < 8; i++) {
                    if (a + c[i] >= (u32)need) {
                        sm.digit = 255 - 8 * lane - i;
                        sm.need = need - (int)a;
                        sm.done = c[i] == (u32)(need - (int)a);
                        break;
                    }
                    a += c[i];
                }
            }
        }
        __syncthreads();
        need = sm.need;
        prefix |= (unsigned long long)sm.digit << shift;
        mask |= 0xFFull << shift;
        if (sm.done) break;  // every key of this digit is in: the rest of the bits can't split them
    }
}

__device__ void sample_impl(const SampleArgs& g) {
    __shared__ SampleSmem sm;
    const int row = blockIdx.y;
    const SampleParams prm = ((const SampleParams*)g.params)[row];
    const int k = min(max(prm.top_k, 1), SAMPLE_MAX_K);
    const float* x = (const float*)g.x + (size_t)row * g.n;
    unsigned long long* const rpart = (unsigned long long*)g.part + (size_t)row * (SAMPLE_MAX_CTAS * SAMPLE_MAX_K + 1);
    const int base = blockIdx.x * SAMPLE_SLICE;
    const int nreal = min(SAMPLE_SLICE, g.n - base), kc = min(k, nreal);
    unsigned long long key[SAMPLE_PER_THREAD], prefix, mask;
#pragma unroll
    for (int e = 0; e < SAMPLE_PER_THREAD; e++) {
        int i = threadIdx.x + e * blockDim.x;
        key[e] = i < nreal ? sample_key(x[base + i], base + i) : 0ull;  // 0: below every logit
    }
    if (threadIdx.x == 0) sm.count = 0;
    sample_select(key, kc, sm, prefix, mask);
    unsigned long long* part = rpart + blockIdx.x * SAMPLE_MAX_K;
#pragma unroll
    for (int e = 0; e < SAMPLE_PER_THREAD; e++)
        if ((key[e] & mask) >= prefix) part[atomicAdd(&sm.count, 1)] = key[e];
    for (int i = kc + threadIdx.x; i < k; i += blockDim.x) part[i] = 0ull;
    unsigned* ticket = (unsigned*)(rpart + SAMPLE_MAX_CTAS * SAMPLE_MAX_K);
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) sm.last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!sm.last) return;
    __threadfence();
    // The last CTA: the top k of every CTA's k candidates (unused slots hold 0).
    const unsigned long long* all = rpart;
    const int m = gridDim.x * k;  // <= SAMPLE_MAX_CTAS · SAMPLE_MAX_K <= SAMPLE_SLICE
#pragma unroll
    for (int e = 0; e < SAMPLE_PER_THREAD; e++) {
        int i = threadIdx.x + e * blockDim.x;
        key[e] = i < m ? __ldcg(all + (i / k) * SAMPLE_MAX_K + i % k) : 0ull;
    }
    if (threadIdx.x == 0) sm.count = 0;
    sample_select(key, k, sm, prefix, mask);
#pragma unroll
    for (int e = 0; e < SAMPLE_PER_THREAD; e++)
        if ((key[e] & mask) >= prefix) sm.sel[atomicAdd(&sm.count, 1)] = key[e];
    __syncthreads();
    // Rank (keys are unique): candidate j's place is the number of larger keys.
    if (threadIdx.x < k) {
        const unsigned long long mine = sm.sel[threadIdx.x];
        int r = 0;
        for (int j = 0; j < k; j++) r += sm.sel[j] > mine;
        sm.sorted[r] = mine;
    }
    __syncthreads();
    const double t = (double)prm.temperature, lmax = (double)sample_key_value(sm.sorted[0]);
    if (threadIdx.x < k) sm.w[threadIdx.x] = exp(((double)sample_key_value(sm.sorted[threadIdx.x]) - lmax) / t);
    __syncthreads();
    if (threadIdx.x != 0) return;
    int tok = 0x7fffffff;
    bool finite = true;
    for (int j = 0; j < k; j++) finite = finite && isfinite(sample_key_value(sm.sorted[j]));
    if (finite) {
        double* w = sm.w;
        double z = 0.0;
        for (int j = 0; j < k; j++) z += w[j];
        int keep = k;
        double cum = 0.0;
        for (int j = 0; j < k; j++) {
            w[j] = w[j] / z;
            cum += w[j];
            if (cum >= (double)prm.top_p) {
                keep = j + 1;
                break;
            }
        }
        double s = 0.0;
        for (int j = 0; j < keep; j++) s += w[j];
        const double r = prm.u * s;
        double acc = 0.0;
        tok = sample_key_id(sm.sorted[keep - 1]);
        for (int j = 0; j < keep; j++) {
            acc += w[j];
            if (r < acc) {
                tok = sample_key_id(sm.sorted[j]);
                break;
            }
        }
    }
    ((int*)g.out)[row] = tok;
    chain_advance(g.chain_pos, g.chain_tokens, g.chain_ring, tok, g.n);
    *ticket = 0;
}
