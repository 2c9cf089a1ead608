// attnbench3.cu — decode attention at depth (#11): where the 13 µs of a 7B layer's attention at
// position 4,104 go, now that its CTAs run one per SM (main 89d412b: SplitGeom::launch_smem).
// Times graphrun's generated decode attention kernel (the attention family source of the build,
// included as FAM) on the Qwen2.5 7B and 1.5B shapes at 576, 4,104 and 8,200 positions, with a
// distinct KV cache per layer (28 of them, launched in turn: at depth the 28 caches do not fit
// the L2, as in the decode step, unlike one cache timed back to back), programmatic launches:
//   gen    the generated attention_split_f16, asking for over half an SM's shared memory (one
//          CTA per SM, as main launches it);
//   pack   the same asking for its stage area only (CTAs may pack two to an SM: before);
//   lb1    attention_split_impl<KvF16> under __launch_bounds__(256, 1) instead of (256, 2): one
//          CTA per SM lets each thread have up to 255 registers (same code, so the same bits);
//   st     a copy of attention_split_impl / split_partial (kernels/attention.cu,
//          kernels/attn_decode.cuh) that stamps clock64 at each phase in thread 0 of every
//          CTA (output compared bit for bit with gen);
//   pre2   st with stage 1's copies (the rows older than the newest) also issued before the
//          wait, so at depth the second stage's DRAM read overlaps the kernel before too;
//   m16, m32  st (under __launch_bounds__(256, 1)) whose merge loads the first 16 or 32
//          weighted-V partials of each thread's column before the weights are known (main: 8),
//          so at 33 splits the merging CTA waits on one or two L2 round trips, not four;
//   pre2m32   both.
//   mcp       the merge's weighted-V partials copied into shared memory by cp.async, all that fit
//             requested before the max and sum pass (session 51).
// Every variant computes the same arithmetic in the same order: the bits must equal gen's.
// Build: nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_att.cu"' -I<dir of fam_att.cu> attnbench3.cu -o attnbench3
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

#define NST 12  // stamps per CTA: 0 entry gt, 1 exit gt, 10 entry clock, 2.. clock64 at phases
__device__ __forceinline__ u64 gtime() { u64 t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }
#define STAMP(k) do { if (my) my[k] = clock64(); } while (0)

// split_partial with stamps: 3 q staged (the next stage issued before), 4 first stage landed,
// 5 first stage's scores done, 6 all stages done, 7 partial written.
// PRE2 (variant pre2): the caller issued stage 1 before its wait too; w0 is the cp.async wait
// count that completes stage 0 (and the newest row's group when that row is in stage 0).
template <class KV, bool DIRECT = false, bool PRE2 = false>
__device__ void split_partial_st(const AttnSplitArgs& g, u8* smem, int kvh, int sp, int npos, int per, bool issued, u64* my, int w0 = 1) {
    constexpr int MG = ATT_MAX_GROUP;
    SplitHead& S = *(SplitHead*)smem;
    u8* stage = smem + sizeof(SplitHead);
    const int tid = threadIdx.x, nt = blockDim.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, nc = g.nc;
    const int j0 = sp * per, j1 = min(j0 + per, npos), nst = (j1 - j0 + nc - 1) / nc;
    float* part = (float*)g.part;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    if (!issued) split_stage<KV>(g, stage, kvh, j0, j1);
    for (int i = tid; i < G * hd; i += nt) S.q[i / hd][i % hd] = ((const float*)g.q)[(size_t)kvh * G * hd + i];
    STAMP(3);
    float m = -INFINITY, l = 0.0f;  // warp h < G: head h's running max and sum (all lanes alike)
    const int d4 = tid % nd4, slice = tid / nd4, nslice = nt / nd4;
    float4 acc[MG];
#pragma unroll
    for (int h = 0; h < MG; h++) acc[h] = zero;
    for (int c = 0; c < nst; c++) {
        const u8* cur = stage + (size_t)(c & 1) * g.stage_bytes;
        if (PRE2 && c == 0 && nst > 1) {
            if (w0 == 0) cp_async_wait<0>();
            else if (w0 == 1) cp_async_wait<1>();
            else cp_async_wait<2>();
        } else if (c + 1 < nst) {
            split_stage<KV>(g, stage + (size_t)((c + 1) & 1) * g.stage_bytes, kvh, j0 + (c + 1) * nc, j1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (c == 0) STAMP(4);
        const int jc = j0 + c * nc;
        if (warp < G) {
            // The lane's two positions (lane, lane + 32) in one pass over the head dims: two
            // independent FMA chains (each position's sum in the same order as one chain at a
            // time, which left the FMA latency exposed: half the kernel's time at short
            // context, evidence/h200/attn-decode/). Rows past j1 are zero-filled in the stage,
            // so they compute harmlessly and are masked below; with nc = 32 the second chain
            // repeats the first.
            const bool two = nc > 32;
            const u8* kr0 = cur + (size_t)lane * g.row_bytes;
            const u8* kr1 = two ? kr0 + (size_t)32 * g.row_bytes : kr0;
            float a0 = 0.0f, a1 = 0.0f;
#pragma unroll 2
            for (int e = 0; e < hd; e += KV::PIECE) {
                float4 k0[KV::PIECE / 4], k1[KV::PIECE / 4];
                KV::load_piece(kr0 + e * KV::BYTES, k0);
                KV::load_piece(kr1 + e * KV::BYTES, k1);
#pragma unroll
                for (int x = 0; x < KV::PIECE / 4; x++) {
                    const float4 qv = *(const float4*)&S.q[warp][e + 4 * x];
                    a0 = f4_dot(qv, k0[x], a0);
                    a1 = f4_dot(qv, k1[x], a1);
                }
            }
            float s[2];
            s[0] = jc + lane < j1 ? __fmul_rn(a0, g.scale) : -INFINITY;
            s[1] = two && jc + lane + 32 < j1 ? __fmul_rn(a1, g.scale) : -INFINITY;
            float mx = fmaxf(s[0], s[1]);
            // Position j0 is in the first stage, so mn is finite from the first stage on.
            float mn = fmaxf(m, warp_max(mx)), sum = 0.0f;
            float corr = expf(m - mn);
#pragma unroll
            for (int u = 0; u < 2; u++) {
                int jj = lane + 32 * u;
                float p = expf(s[u] - mn);
                if (jj < nc) S.p[jj][warp] = p;
                sum += p;
            }
            l = __fmaf_rn(l, corr, warp_sum(sum));
            m = mn;
            if (lane == 0) S.corr[warp] = corr;
        }
        __syncthreads();
        if (c == 0) STAMP(5);
        if (slice < nslice) {
#pragma unroll
            for (int h = 0; h < MG; h++)
                if (h < G) acc[h] = f4_scale(acc[h], S.corr[h]);
            for (int jj = slice; jj < nc; jj += nslice) {
                float4 v = KV::load4(cur + (size_t)(nc + jj) * g.row_bytes, 4 * d4);
                float4 pa = *(const float4*)&S.p[jj][0], pb = *(const float4*)&S.p[jj][4];
#pragma unroll
                for (int h = 0; h < MG; h++)
                    if (h < G) acc[h] = f4_fma(h < 4 ? f4_at(pa, h) : f4_at(pb, h - 4), v, acc[h]);
            }
        }
        __syncthreads();  // the stage is refilled next
    }
    STAMP(6);
    // The split's partial: slices summed in order (the stages' space is free now).
    if (DIRECT && warp < G && lane == 0) {
        // The merge's weight and L for a single partial (S.p and S.corr are free now).
        const float w1 = m == -INFINITY ? 0.0f : expf(m - m);
        S.p[0][warp] = w1;
        S.corr[warp] = fmaf(l, w1, 0.0f);
    }
    float* red = (float*)stage;
    if (slice < nslice)
#pragma unroll
        for (int h = 0; h < MG; h++)
            if (h < G) *(float4*)&red[((size_t)slice * G + h) * hd + 4 * d4] = acc[h];
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        float4 o = zero;
        for (int s = 0; s < nslice; s++) {
            float4 v = *(const float4*)&red[((size_t)s * G + h) * hd + 4 * c4];
            o = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
        }
        if constexpr (DIRECT) {
            const float w1 = S.p[0][h], L = S.corr[h];
            o = f4_fma(w1, o, zero);
            ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
        } else {
            *(float4*)(part + ((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 4) + 4 + 4 * c4) = o;
        }
    }
    if (!DIRECT && warp < G && lane == 0) {
        float* ph = part + ((size_t)(kvh * G + warp) * g.n_split + sp) * (hd + 4);
        ph[0] = m;
        ph[1] = l;
    }
    STAMP(7);
}

// The merge's max and sum pass (split_merge's, unchanged): warp h < G takes query head h's
// maxima and sums of the active splits, writes their weights exp(m_s − M) to w[h][s] and
// L = Σ l_s·w_s to S.corr[h]. Shared by split_merge_w and split_merge_cp.
__device__ __forceinline__ void merge_weights(const AttnSplitArgs& g, SplitHead& S, float* w, int kvh, int active) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int hd = g.head_dim, G = g.n_head / g.n_head_kv;
    const float* part = (const float*)g.part;
    if (warp < G) {
        const float* ph = part + (size_t)(kvh * G + warp) * g.n_split * (hd + 4);
        float M = -INFINITY, L = 0.0f;
        float ml[MERGE_ML_LANE], ll[MERGE_ML_LANE];
#pragma unroll
        for (int k = 0; k < MERGE_ML_LANE; k++) {
            const int s = lane + 32 * k;
            ml[k] = -INFINITY;
            ll[k] = 0.0f;
            if (s < active) {
                const float* ps = ph + (size_t)s * (hd + 4);
                ml[k] = __ldcg(ps);
                ll[k] = __ldcg(ps + 1);
            }
            M = fmaxf(M, ml[k]);
        }
        for (int s = lane + 32 * MERGE_ML_LANE; s < active; s += 32) M = fmaxf(M, __ldcg(ph + (size_t)s * (hd + 4)));
        M = warp_max(M);
#pragma unroll
        for (int k = 0; k < MERGE_ML_LANE; k++) {
            const int s = lane + 32 * k;
            if (s < active) {
                float ws = ml[k] == -INFINITY ? 0.0f : expf(ml[k] - M);
                w[warp * active + s] = ws;
                L = fmaf(ll[k], ws, L);
            }
        }
        for (int s = lane + 32 * MERGE_ML_LANE; s < active; s += 32) {
            const float* ps = ph + (size_t)s * (hd + 4);
            float ms = __ldcg(ps), ws = ms == -INFINITY ? 0.0f : expf(ms - M);
            w[warp * active + s] = ws;
            L = fmaf(__ldcg(ps + 1), ws, L);
        }
        L = warp_sum(L);
        if (lane == 0) S.corr[warp] = L;
    }
}

// split_merge with the first PRE weighted-V partials of each thread's column loaded before the
// weights are known (split_merge: MERGE_PRE = 8); the same arithmetic in the same order.
template <int PRE>
__device__ void split_merge_w(const AttnSplitArgs& g, u8* smem, int kvh, int active) {
    SplitHead& S = *(SplitHead*)smem;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv;
    const float* part = (const float*)g.part;
    float* w = (float*)(smem + sizeof(SplitHead));
    const int npre = min(active, PRE);
    float4 pre[PRE];
    if (tid < G * nd4) {
        const float* ph = part + (size_t)(kvh * G + tid / nd4) * g.n_split * (hd + 4) + 4 + 4 * (tid % nd4);
#pragma unroll
        for (int s = 0; s < PRE; s++)
            if (s < npre) pre[s] = __ldcg((const float4*)(ph + (size_t)s * (hd + 4)));
    }
    merge_weights(g, S, w, kvh, active);
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        const float* ph = part + (size_t)(kvh * G + h) * g.n_split * (hd + 4) + 4 + 4 * c4;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        int s0 = 0;
        if (i == tid) {
#pragma unroll
            for (int s = 0; s < PRE; s++)
                if (s < npre) o = f4_fma(w[h * active + s], pre[s], o);
            s0 = npre;
        }
#pragma unroll 8
        for (int s = s0; s < active; s++) o = f4_fma(w[h * active + s], __ldcg((const float4*)(ph + (size_t)s * (hd + 4))), o);
        float L = S.corr[h];
        ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
    }
}

// split_merge with the weighted-V partials copied into shared memory by cp.async (variant mcp,
// session 51): a copy in flight holds no register, so every split that fits the launch's dynamic
// shared memory is requested at once, before the max and sum pass; splits past that are read as
// in split_merge. The same arithmetic in the same order (o = fma(w_s, acc_s, o) for s = 0, 1, ...).
__device__ __forceinline__ int dyn_smem_bytes() {
    unsigned r;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
    return (int)r;
}
__device__ void split_merge_cp(const AttnSplitArgs& g, u8* smem, int kvh, int active) {
    SplitHead& S = *(SplitHead*)smem;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv;
    const float* part = (const float*)g.part;
    float* w = (float*)(smem + sizeof(SplitHead));  // [G][active] merge weights
    const int wbytes = (G * active * 4 + 15) / 16 * 16;
    float4* buf = (float4*)(smem + sizeof(SplitHead) + wbytes);  // [split][head][column]
    const int per_split = G * nd4;
    const int ncp = min(active, (dyn_smem_bytes() - (int)sizeof(SplitHead) - wbytes) / (per_split * 16));
    for (int i = tid; i < ncp * per_split; i += nt) {
        const int s = i / per_split, hc = i % per_split;
        cp_async16(buf + i, part + ((size_t)(kvh * G + hc / nd4) * g.n_split + s) * (hd + 4) + 4 + 4 * (hc % nd4), 16);
    }
    cp_async_commit();
    merge_weights(g, S, w, kvh, active);
    cp_async_wait<0>();
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        const float* ph = part + (size_t)(kvh * G + h) * g.n_split * (hd + 4) + 4 + 4 * c4;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int s = 0; s < ncp; s++) o = f4_fma(w[h * active + s], buf[(size_t)s * per_split + i], o);
#pragma unroll 8
        for (int s = ncp; s < active; s++) o = f4_fma(w[h * active + s], __ldcg((const float4*)(ph + (size_t)s * (hd + 4))), o);
        float L = S.corr[h];
        ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
    }
}

// attention_split_impl (single row) with stamps: 2 wait returned, 8 ticket taken, 9 merge done.
// MODE bit 0: stage 1 issued before the wait too (pre2); bits 1-2: the merge loads its first 16
// (bit 1) or 32 (bit 2) weighted-V partials per column ahead (m16, m32); 0: main's code.
template <class KV, int MODE>
__device__ __forceinline__ void att_st_body(const AttnSplitArgs& g, u64* st) {
    constexpr bool PRE2 = MODE & 1;
    u64 gt0 = gtime();
    extern __shared__ float4 att_smem[];
    u8* smem = (u8*)att_smem;
    SplitHead& S = *(SplitHead*)smem;
    const int kvh = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x;
    u64* my = tid == 0 ? st + (size_t)(blockIdx.y * gridDim.x + blockIdx.x) * NST : nullptr;
    if (my) { my[0] = gt0; for (int k = 2; k < NST; k++) my[k] = 0; my[10] = clock64(); }
    const int npos = __ldcg((const int*)g.pos) + 1;
    const int per = split_per(npos, g.n_split, g.nc);
    const int active = (npos + per - 1) / per;
    if (sp >= active) { grid_dep_enter(); if (my) my[1] = gtime(); return; }
    const int newest = npos - 1;
    u8* stage = smem + sizeof(SplitHead);
    const int j0 = sp * per;
    const int j1 = min(j0 + per, npos);
    const int nst = (j1 - j0 + g.nc - 1) / g.nc;
    split_stage<KV>(g, stage, kvh, j0, j1, newest);
    if (PRE2 && nst > 1) split_stage<KV>(g, stage + g.stage_bytes, kvh, j0 + g.nc, j1, newest);
    grid_dep_enter();
    STAMP(2);
    int w0 = 1;  // pre2: stage 0 complete once at most stage 1's group is pending
    if (newest < j0 + g.nc) {
        split_stage_row<KV>(g, stage, kvh, j0, newest);
        w0 = 0;
    } else if (PRE2 && nst > 1 && newest < j0 + 2 * g.nc) {
        split_stage_row<KV>(g, stage + g.stage_bytes, kvh, j0 + g.nc, newest);
        w0 = 2;
    }
    if (active == 1) {
        split_partial_st<KV, true, PRE2>(g, smem, kvh, sp, npos, per, true, my, w0);
        if (my) my[1] = gtime();
        return;
    }
    split_partial_st<KV, false, PRE2>(g, smem, kvh, sp, npos, per, true, my, w0);
    __threadfence();
    __syncthreads();
    if (tid == 0) S.last = atomicAdd((unsigned*)g.ticket + kvh, 1u) == (unsigned)(active - 1);
    __syncthreads();
    STAMP(8);
    if (S.last) {
        __threadfence();
        if (MODE & 8) split_merge_cp(g, smem, kvh, active);
        else if (MODE & 4) split_merge_w<32>(g, smem, kvh, active);
        else if (MODE & 2) split_merge_w<16>(g, smem, kvh, active);
        else split_merge(g, smem, kvh, active);
        if (tid == 0) ((unsigned*)g.ticket)[kvh] = 0;
        STAMP(9);
    }
    if (my) my[1] = gtime();
}
template <class KV, int MODE>
__global__ void __launch_bounds__(256, 2) att_st(AttnSplitArgs g, u64* st) { att_st_body<KV, MODE>(g, st); }
// The same under (256, 1): room for the wider merge's registers.
template <class KV, int MODE>
__global__ void __launch_bounds__(256, 1) att_st1(AttnSplitArgs g, u64* st) { att_st_body<KV, MODE>(g, st); }

extern "C" __global__ void __launch_bounds__(256, 1) att_lb1(AttnSplitArgs a) { attention_split_impl<KvF16>(a); }

__global__ void fill_f16(u16* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = f32_to_f16(((int)(x & 0xffff) - 32768) / 32768.0f);
    }
}
__global__ void fill_f32(float* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = ((int)(x & 0xffff) - 32768) / 16384.0f;
    }
}

#define NL 28
struct Shape { const char* name; int nh, nkv, hd; };
enum { V_GEN, V_PACK, V_LB1, V_ST, V_PRE2, V_M16, V_M32, V_PRE2M32, V_MCP, NV };
static const char* vname[NV] = {"gen", "pack", "lb1", "st", "pre2", "m16", "m32", "pre2m32", "mcp"};
typedef void (*StFn)(AttnSplitArgs, u64*);
static StFn st_fn(int v) {
    switch (v) {
    case V_ST: return att_st<KvF16, 0>;
    case V_PRE2: return att_st<KvF16, 1>;
    case V_M16: return att_st1<KvF16, 2>;
    case V_M32: return att_st1<KvF16, 4>;
    case V_PRE2M32: return att_st1<KvF16, 5>;
    case V_MCP: return att_st<KvF16, 8>;
    default: return nullptr;
    }
}

struct Bench {
    AttnSplitArgs a[NL];
    dim3 grid;
    int smem_spread, smem_pack;
    u64* st[NL];
};

static void launch(const Bench& b, int v, int layer) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    cfg.gridDim = b.grid;
    cfg.blockDim = dim3(ATT_THREADS);
    cfg.dynamicSmemBytes = v == V_PACK ? b.smem_pack : b.smem_spread;
    cfg.stream = 0;
    if (StFn f = st_fn(v)) CK(cudaLaunchKernelEx(&cfg, f, b.a[layer], b.st[layer]));
    else if (v == V_LB1) CK(cudaLaunchKernelEx(&cfg, att_lb1, b.a[layer]));
    else CK(cudaLaunchKernelEx(&cfg, attention_split_f16, b.a[layer]));
}

static double time_us(const Bench& b, int v, int rounds) {
    static cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
    for (int i = 0; i < NL; i++) launch(b, v, i);
    CK(cudaEventRecord(e0));
    for (int r = 0; r < rounds; r++) for (int i = 0; i < NL; i++) launch(b, v, i);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return 1000.0 * ms / (rounds * NL);
}

int main(int argc, char** argv) {
    // `attnbench3 prof`: only the 7B shape at 4,104 positions, `gen` over the 28 layers four times
    // (a warm round and three), for Nsight Compute to sample one launch.
    const bool prof = argc > 1 && !strcmp(argv[1], "prof");
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    const int sms = prop.multiProcessorCount;
    printf("device %s, %d SMs, %zu B shared memory per SM\n", prop.name, sms, prop.sharedMemPerMultiprocessor);
    Shape shapes[] = {{"7b", 28, 4, 128}, {"1.5b", 12, 2, 128}};
    int nposes[] = {576, 4104, 8200};
    const int n_ctx = 8256;
    for (const Shape& sh : shapes) {
        if (prof && strcmp(sh.name, "7b")) continue;
        const int G = sh.nh / sh.nkv, n_split = (sms + sh.nkv - 1) / sh.nkv, nc = 64;
        const int row_bytes = sh.hd * 2 + 16, stage = 2 * nc * row_bytes;
        const int smem = ATT_SPLIT_HEAD_BYTES + std::max(2 * stage, std::max(ATT_THREADS * G * 16, G * n_split * 4));
        const int spread = std::min<int>(std::max<int>(smem, prop.sharedMemPerMultiprocessor / 2 + 1), prop.sharedMemPerBlockOptin);
        CK(cudaFuncSetAttribute(attention_split_f16, cudaFuncAttributeMaxDynamicSharedMemorySize, prop.sharedMemPerBlockOptin));
        for (int v = 0; v < NV; v++)
            if (StFn f = st_fn(v)) CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, prop.sharedMemPerBlockOptin));
        CK(cudaFuncSetAttribute(att_lb1, cudaFuncAttributeMaxDynamicSharedMemorySize, prop.sharedMemPerBlockOptin));
        const size_t kvn = (size_t)n_ctx * sh.nkv * sh.hd, nst = (size_t)sh.nkv * n_split * NST;
        Bench b;
        b.grid = dim3(sh.nkv, n_split);
        b.smem_spread = spread;
        b.smem_pack = smem;
        int* pos; CK(cudaMalloc(&pos, 4));
        std::vector<void*> bufs;
        for (int l = 0; l < NL; l++) {
            u16 *k, *v; float *q, *out, *part; unsigned* ticket;
            CK(cudaMalloc(&k, kvn * 2)); CK(cudaMalloc(&v, kvn * 2));
            CK(cudaMalloc(&q, sh.nh * sh.hd * 4)); CK(cudaMalloc(&out, sh.nh * sh.hd * 4));
            CK(cudaMalloc(&part, (size_t)sh.nh * n_split * (sh.hd + 4) * 4));
            CK(cudaMalloc(&ticket, 64 * 4)); CK(cudaMemset(ticket, 0, 64 * 4));
            CK(cudaMalloc(&b.st[l], nst * 8)); CK(cudaMemset(b.st[l], 0, nst * 8));
            fill_f16<<<512, 256>>>(k, kvn, 1 + 7 * l); fill_f16<<<512, 256>>>(v, kvn, 2 + 7 * l); fill_f32<<<64, 256>>>(q, sh.nh * sh.hd, 3 + 7 * l);
            bufs.insert(bufs.end(), {k, v, q, out, part, ticket, b.st[l]});
            AttnSplitArgs& a = b.a[l];
            a = AttnSplitArgs{};
            a.q = (u64)q; a.k_cache = (u64)k; a.v_cache = (u64)v; a.out = (u64)out; a.pos = (u64)pos;
            a.part = (u64)part; a.ticket = (u64)ticket; a.seq = 0;
            a.n_head = sh.nh; a.n_head_kv = sh.nkv; a.head_dim = sh.hd; a.n_split = n_split;
            a.scale = 1.0f / sqrtf((float)sh.hd); a.nc = nc; a.row_bytes = row_bytes; a.stage_bytes = stage;
        }
        CK(cudaDeviceSynchronize());
        printf("\n== %s: %d heads, %d KV heads, hd %d, grid %dx%d, %d B shared (spread: %d B), %d layers' caches\n",
               sh.name, sh.nh, sh.nkv, sh.hd, sh.nkv, n_split, smem, spread, NL);
        for (int np : nposes) {
            if (prof && np != 4104) continue;
            int p = np - 1;
            CK(cudaMemcpy(pos, &p, 4, cudaMemcpyHostToDevice));
            if (prof) {
                printf("prof: gen at %d positions, %.2f us per launch\n", np, time_us(b, V_GEN, 3));
                continue;
            }
            std::vector<float> ref(sh.nh * sh.hd), got(sh.nh * sh.hd);
            launch(b, V_GEN, 0); CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(ref.data(), (void*)b.a[0].out, ref.size() * 4, cudaMemcpyDeviceToHost));
            bool same[NV];
            for (int vv = 0; vv < NV; vv++) {
                CK(cudaMemset((void*)b.a[0].out, 0, ref.size() * 4));
                launch(b, vv, 0); CK(cudaDeviceSynchronize());
                CK(cudaMemcpy(got.data(), (void*)b.a[0].out, got.size() * 4, cudaMemcpyDeviceToHost));
                same[vv] = memcmp(ref.data(), got.data(), ref.size() * 4) == 0;
            }
            const double kv_mb = 2.0 * np * sh.nkv * sh.hd * 2 / 1e6;
            printf("npos %5d (%.2f MB of cache a layer), us per launch (GB/s of cache), two rounds:\n", np, kv_mb);
            for (int rep = 0; rep < 2; rep++) {
                printf("  ");
                for (int vv = 0; vv < NV; vv++) {
                    double t = time_us(b, vv, 20);
                    printf(" %s %.2f (%.0f)%s", vname[vv], t, kv_mb * 1e3 / t, same[vv] ? "" : " DIFFERS-from-gen");
                }
                printf("\n");
            }
            // Phases of each stamped variant: a round over the 28 layers after a warm round, each
            // layer's stamps in its own buffer. Cycles to ns by the round's total globaltimer time
            // over its total cycles (%globaltimer ticks are coarse).
            for (int vv = V_ST; vv < NV; vv++) {
                for (int l = 0; l < NL; l++) launch(b, vv, l);
                CK(cudaDeviceSynchronize());
                for (int l = 0; l < NL; l++) CK(cudaMemset(b.st[l], 0, nst * 8));
                for (int l = 0; l < NL; l++) launch(b, vv, l);
                CK(cudaDeviceSynchronize());
                const char* ph[] = {"entry->wait", "q staged", "1st stage landed", "1st scores", "rest of stages+PV", "partial written", "fence+ticket", "merge"};
                const int idx[] = {2, 3, 4, 5, 6, 7, 8, 9};
                double sum[8] = {0}, mg[8] = {0}, span = 0, ent = 0, gt_ns = 0, cyc = 0;
                int cnt = 0, mcnt = 0;
                for (int l = 0; l < NL; l++) {
                    std::vector<u64> X(nst);
                    CK(cudaMemcpy(X.data(), b.st[l], nst * 8, cudaMemcpyDeviceToHost));
                    u64 t0 = ~0ull, t1 = 0;
                    for (size_t c = 0; c < nst / NST; c++) { t0 = std::min(t0, X[c * NST]); t1 = std::max(t1, X[c * NST + 1]); }
                    span += (t1 - t0) / 1e3;
                    for (size_t c = 0; c < nst / NST; c++) {
                        const u64* r = &X[c * NST];
                        if (!r[7]) continue;  // no positions
                        const u64 lastc = r[9] ? r[9] : r[8] ? r[8] : r[7];
                        gt_ns += (double)(r[1] - r[0]);
                        cyc += (double)(lastc - r[10]);
                        u64 prev = r[10];
                        for (int i = 0; i < 8; i++) {
                            u64 t = r[idx[i]] ? r[idx[i]] : prev;
                            sum[i] += (double)(t - prev);
                            if (r[9]) mg[i] += (double)(t - prev);
                            prev = t;
                        }
                        ent += (r[0] - t0) / 1e3;
                        cnt++;
                        if (r[9]) mcnt++;
                    }
                }
                const double k = cyc > 0 ? gt_ns / cyc : 0;
                printf("   %s phases (ns; mean over %d active CTAs of %d launches / over the %d merging CTAs; %.3f ns a cycle); span %.2f us, CTA entry %.2f us after the first:\n  ",
                       vname[vv], cnt, NL, mcnt, k, span / NL, cnt ? ent / cnt : 0);
                for (int i = 0; i < 8; i++) printf(" %s %.0f/%.0f;", ph[i], cnt ? k * sum[i] / cnt : 0, mcnt ? k * mg[i] / mcnt : 0);
                printf("\n");
            }
        }
        for (void* p : bufs) cudaFree(p);
        cudaFree(pos);
    }
    return 0;
}
