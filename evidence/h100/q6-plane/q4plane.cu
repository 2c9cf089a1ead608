// q4plane.cu — the Q4_K side of q6plane.cu: would the Q4_K decode matvecs (the 7B's gate+up, its other
// half of the downs, attn_out) also run faster over per-matrix planes? A GGUF Q4_K block is d, dmin,
// scales[12], qs[128]: 144 bytes, already 16-byte aligned. Here it is split into a head plane (the
// block's first 16 bytes) and a qs plane (its 128 bytes of nibbles), block-major like the rows: the
// same bytes, but the heads of neighbouring blocks share sectors and each block's qs fill exactly
// four. `plane` is the generated kernel's tile with only its loads changed:
//   - SwiGLU: matvec_tile_kq_swiglu (matvec.cuh) with wraw's three 16-byte loads taken from the planes;
//   - add: matvec_tile's k-quant branch (kq_add over W::wload) likewise.
// Same integers, same order: the outputs must be the same bits (checked, every row). `blkidx` (add only,
// call 5) is the plane kernel's code over the GGUF blocks: block-index addressing without the planes, to
// tell the layout's share of a gain from the code's.
// Timed as q6plane.cu times (rotating copies, programmatic launches). Build: build.sh (Q4=1).
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

using W4 = TQ4_K;

// A unit's raw loads from the planes: qs plane at `qs`, head plane at `hd`; blk = row · nb + sb.
__device__ __forceinline__ W4::WR praw(const u8* qs, const u8* hd, u32 blk, int k, bool ok) {
    W4::WR r;
    r.qa = ld16_if(qs + (size_t)blk * 128 + 32 * k, ok);
    r.qb = ld16_if(qs + (size_t)blk * 128 + 32 * k + 16, ok);
    r.h = ld16_if(hd + (size_t)blk * 16, ok);
    return r;
}

// matvec_tile_kq_swiglu<TQ4_K> over planes: w/w2 = the gate/up qs planes, each followed by its head
// plane (rows · nb · 128 bytes on).
__device__ __forceinline__ void tile_swiglu_plane(const MatvecArgs& g, const Act& a, int base, float* part) {
    using W = W4;
    constexpr int R = RowsPerWarp<W>::v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    const bool b0 = lane & 1, b1 = (lane >> 1) & 1;
    const u32 nb = (u32)g.K / 256u;
    const u8* qg = (const u8*)g.w;
    const u8* qu = (const u8*)g.w2;
    const u8* hg = qg + (size_t)g.rows * nb * 128;
    const u8* hu = qu + (size_t)g.rows * nb * 128;
    float* out = (float*)g.out;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    const int u0 = ks * L + li, stride = KS * L;
    const int k4 = (unsigned)u0 % 4u;
    // As the base kernel walks one block pointer: the lane's qs run and head of row r0, a row
    // (nb blocks) apart per row, the up matrix's planes a fixed distance on.
    const size_t b0i = (size_t)r0 * nb + (unsigned)u0 / 4u;
    const u8* pq = qg + b0i * 128 + 32 * k4;
    const u8* ph = hg + b0i * 16;
    const long long uq = qu - qg, uh = hu - hg;
    const int sq = (unsigned)stride / 4u * 128, sh = (unsigned)stride / 4u * 16;
    float acc[2] = {0.0f, 0.0f};
    for (int u = u0; u < units; u += stride, pq += sq, ph += sh) {
        const typename W::AU x = W::aload(a, u);
#pragma unroll
        for (int j = 0; j < 2; j++) {
            int2 k[2];
            float d[2], dmin[2];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = 2 * j + h;
                const bool ok = r < valid;
                const u8* rq = pq + (size_t)r * nb * 128;
                const u8* rh = ph + (size_t)r * nb * 16;
                typename W::WR gr, ur;
                gr.qa = ld16_if(rq, ok), gr.qb = ld16_if(rq + 16, ok), gr.h = ld16_if(rh, ok);
                ur.qa = ld16_if(rq + uq, ok), ur.qb = ld16_if(rq + uq + 16, ok), ur.h = ld16_if(rh + uh, ok);
                const typename W::WU G = W::wdecode(gr, k4), U = W::wdecode(ur, k4);
                const int2 sg = W::wsums(G, x), su = W::wsums(U, x);
                k[h] = quad_keep1(sg, su);
                d[h] = b0 ? U.d : G.d;
                dmin[h] = b0 ? U.dmin : G.dmin;
            }
            const int2 t = quad_keep2(k[0], k[1]);
            acc[j] = W::sb_add(acc[j], b1 ? d[1] : d[0], b1 ? dmin[1] : dmin[0], x.dk, t);
        }
    }
#pragma unroll
    for (int j = 0; j < 2; j++) acc[j] = group_sum<4>(acc[j], L);
    const int slot = b0 * R * 32 + grp * R;
    if (KS > 1) {
        float* mine = part + warp * 2 * R * 32;
        if (li < 4)
#pragma unroll
            for (int j = 0; j < 2; j++) mine[slot + 2 * j + b1] = acc[j];
        __syncthreads();
        if (ks == 0 && li < 4)
#pragma unroll
            for (int j = 0; j < 2; j++)
                for (int k = 1; k < KS; k++) acc[j] += part[(warp + k) * 2 * R * 32 + slot + 2 * j + b1];
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const float up = __shfl_xor_sync(0xffffffffu, acc[j], 1);
        const int r = 2 * j + b1;
        if (ks == 0 && li < 4 && !b0 && r < valid) out[r0 + r] = __fmul_rn(silu(acc[j]), up);
    }
}

// matvec_tile<TQ4_K, ACT_Q8, EPI_ADD> over planes (w = qs plane, its head plane after it); GGUF: the
// same code over the GGUF blocks (the control: block-index addressing without the planes).
template <bool GGUF>
__device__ __forceinline__ void tile_add_plane(const MatvecArgs& g, const Act& a, int base, float* part) {
    using W = W4;
    constexpr int R = RowsPerWarp<W>::v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    const u32 nb = (u32)g.K / 256u;
    const u8* qs = (const u8*)g.w;
    const u8* hd = qs + (size_t)g.rows * nb * 128;
    float* out = (float*)g.out;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    for (int u = ks * L + li; u < units; u += KS * L) {
        typename W::AU x = W::aload(a, u);
        const u32 sb = (unsigned)u / 4u;
        const int k4 = (unsigned)u % 4u;
#pragma unroll
        for (int r = 0; r < R; r++)
            if (r < valid) {
                const u32 blk = (u32)(r0 + r) * nb + sb;
                if (GGUF) {
                    W::WR raw;
                    const u8* p = qs + (size_t)blk * 144;
                    raw.qa = *(const uint4*)(p + 16 + 32 * k4), raw.qb = *(const uint4*)(p + 32 + 32 * k4), raw.h = *(const uint4*)p;
                    kq_add<W>(acc[r], W::wdecode(raw, k4), x);
                } else {
                    kq_add<W>(acc[r], W::wdecode(praw(qs, hd, blk, k4, true), k4), x);
                }
            }
    }
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = group_sum<KQuadAct<W, ACT_Q8>::v>(acc[r], L);
    if (KS > 1) {
        float* mine = part + warp * 2 * R * 32;
        if (li == 0)
#pragma unroll
            for (int r = 0; r < R; r++) mine[grp * R + r] = acc[r];
        __syncthreads();
        if (ks == 0 && li == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
                for (int k = 1; k < KS; k++) acc[r] += part[(warp + k) * 2 * R * 32 + grp * R + r];
        __syncthreads();
    }
    if (ks == 0 && li == 0)
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= valid) continue;
            out[r0 + r] = __fadd_rn(acc[r], ((const float*)g.extra)[r0 + r]);
        }
}

template <int EPI, bool GGUF>
__device__ __forceinline__ void plane_impl(const MatvecArgs& g) {
    __shared__ float part[MATVEC_PART_FLOATS];
    int rows_per_cta = matvec_tile_rows<W4>(g.K, g.ksplit);
    if (g.prefetch && threadIdx.x < 32) l2_prefetch_rows<EPI>(g, blockIdx.x * rows_per_cta, rows_per_cta);
    grid_dep_enter();
    Act a = act_view(0, g.q0, g.d0, g.qk, g.dk, g.bs);
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += gridDim.x * rows_per_cta) {
        if (EPI == EPI_SWIGLU)
            tile_swiglu_plane(g, a, base, part);
        else
            tile_add_plane<GGUF>(g, a, base, part);
    }
}
__global__ void __launch_bounds__(256, 3) mv_plane_swiglu(MatvecArgs g) { plane_impl<EPI_SWIGLU, false>(g); }
__global__ void __launch_bounds__(256, 4) mv_plane_add(MatvecArgs g) { plane_impl<EPI_ADD, false>(g); }
__global__ void __launch_bounds__(256, 4) mv_blkidx_add(MatvecArgs g) { plane_impl<EPI_ADD, true>(g); }

// GGUF blocks (144 bytes) → qs plane, then head plane.
__global__ void repack(const u8* w, size_t nblocks, u8* planes) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nblocks; i += (size_t)gridDim.x * blockDim.x) {
        const u8* b = w + i * 144;
        for (int j = 0; j < 128; j++) planes[i * 128 + j] = b[16 + j];
        for (int j = 0; j < 16; j++) planes[nblocks * 128 + i * 16 + j] = b[j];
    }
}

__global__ void read4(const uint4* p, size_t n, u32* sink) {
    grid_dep_enter();
    u32 x = 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (; i + 3 * step < n; i += 4 * step) {
        uint4 v0 = p[i], v1 = p[i + step], v2 = p[i + 2 * step], v3 = p[i + 3 * step];
        x ^= v0.x ^ v1.y ^ v2.z ^ v3.w;
    }
    for (; i < n; i += step) x ^= p[i].x;
    if (x == 0x12345678u) *sink = x;
}
__global__ void fill(u8* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13;
        x *= 0x5bd1e995u;
        x ^= x >> 15;
        p[i] = (u8)x;
    }
}
// Small finite d and dmin in every block (f16 0.0039 and 0.0020).
__global__ void fix_heads(u8* p, size_t nblocks) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nblocks; i += (size_t)gridDim.x * blockDim.x) {
        u8* b = p + i * 144;
        b[0] = 0x00, b[1] = 0x1c, b[2] = 0x00, b[3] = 0x18;
    }
}

static int lanes(int units) {
    int l = 32;
    while (l > 1 && l / 2 >= units) l /= 2;
    return l;
}
// Mirrors src/exec/cuda/geometry.rs matvec_grid (as ../../h200/matvec-ring/mvbulk.cu does).
static void grid_of(int rows, int unit, int K, int slots, int& grid, int& ks_out) {
    int units = K / unit, L = lanes(units), per_set = 4 * (32 / L);
    int sets = (rows + per_set - 1) / per_set, ks = 1;
    while (ks < 8 && sets * ks < 2048 && units >= L * ks) ks *= 2;
    auto g = [&](int k) { int per = (8 / k) * per_set; return (rows + per - 1) / per; };
    auto fillf = [&](int k) { int gg = g(k); int s = slots > 0 ? slots : 1; return (double)gg / (double)(((gg + s - 1) / s) * s); };
    if (g(ks) > slots) {
        int best = ks;
        for (int c : {ks * 2, ks * 4, ks * 8})
            if (c <= 8 && units > L * (c - 1) && fillf(c) > fillf(best) + 0.1) best = c;
        ks = best;
    }
    grid = g(ks);
    ks_out = ks;
}

typedef void (*Kfn)(MatvecArgs);
struct Shape {
    const char* name;
    int rows, K;
    bool swiglu;
};
struct Copy {
    u8 *w, *w2, *p, *p2;
};
struct Run {
    Shape s;
    std::vector<Copy> c;
    size_t bytes;  // of one matrix
    int grid, ks, occ;
    Kfn base, plane, blkidx;
};

static int g_sms;
static u8 *g_qk, *g_dk, *g_bs, *g_out, *g_extra;
static u32* g_sink;

static cudaLaunchConfig_t config(int grid, int threads, cudaLaunchAttribute* at) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(threads);
    cfg.stream = 0;
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cfg;
}

// which: 0 base, 1 plane, 2 read4 of the GGUF bytes (both matrices under SwiGLU), 3 blkidx (add only)
static void launch(const Run& r, int i, int which) {
    const Copy& c = r.c[i % r.c.size()];
    cudaLaunchAttribute at[1];
    if (which == 2) {
        cudaLaunchConfig_t cfg = config(4 * g_sms, 256, at);
        CK(cudaLaunchKernelEx(&cfg, read4, (const uint4*)c.w, r.bytes / 16, g_sink));
        if (r.s.swiglu) CK(cudaLaunchKernelEx(&cfg, read4, (const uint4*)c.w2, r.bytes / 16, g_sink));
        return;
    }
    MatvecArgs a;
    memset(&a, 0, sizeof(a));
    a.qk = (u64)g_qk, a.dk = (u64)g_dk, a.bs = (u64)g_bs, a.out = (u64)g_out, a.extra = (u64)g_extra;
    a.rows = r.s.rows, a.K = r.s.K, a.ksplit = r.ks, a.nb = 1;
    a.prefetch = r.grid <= r.occ * g_sms ? 1 : 0;
    if (which == 0 || which == 3) {
        a.w = (u64)c.w, a.w2 = r.s.swiglu ? (u64)c.w2 : 0;
        a.row_bytes = r.s.K / 256 * 144;
    } else {
        a.w = (u64)c.p, a.w2 = r.s.swiglu ? (u64)c.p2 : 0;
        a.row_bytes = r.s.K / 256 * 128;  // the qs plane's (what the L2 prefetch walks)
    }
    cudaLaunchConfig_t cfg = config(r.grid, MATVEC_THREADS, at);
    CK(cudaLaunchKernelEx(&cfg, which == 0 ? r.base : which == 1 ? r.plane : r.blkidx, a));
}

static double time_us(const Run& r, int which, int reps) {
    static cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (!e0) {
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
    }
    for (int i = 0; i < 20; i++) launch(r, i, which);
    CK(cudaDeviceSynchronize());
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; i++) launch(r, i, which);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1000.0 / reps;
}

static std::vector<float> output(const Run& r, int which) {
    CK(cudaMemset(g_out, 0xFF, 4 * (size_t)r.s.rows));
    launch(r, 0, which);
    CK(cudaDeviceSynchronize());
    std::vector<float> o(r.s.rows);
    CK(cudaMemcpy(o.data(), g_out, 4 * o.size(), cudaMemcpyDeviceToHost));
    return o;
}

int main() {
    int dev;
    CK(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    g_sms = prop.multiProcessorCount;
    printf("device %s, %d SMs, L2 %d MB; programmatic launches\n", prop.name, g_sms, prop.l2CacheSize >> 20);
    const size_t K_MAX = 18944, OUT_MAX = 160000;
    CK(cudaMalloc(&g_qk, K_MAX));
    fill<<<64, 256>>>(g_qk, K_MAX, 5);
    std::vector<float> small(K_MAX, 0.01f);
    CK(cudaMalloc(&g_dk, K_MAX * 4));
    CK(cudaMemcpy(g_dk, small.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    std::vector<int> bsums(K_MAX);
    for (size_t i = 0; i < K_MAX; i++) bsums[i] = (int)(i * 37 % 200) - 100;
    CK(cudaMalloc(&g_bs, K_MAX * 4));
    CK(cudaMemcpy(g_bs, bsums.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&g_out, 4 * OUT_MAX));
    CK(cudaMalloc(&g_extra, 4 * OUT_MAX));
    CK(cudaMemset(g_extra, 0, 4 * OUT_MAX));
    CK(cudaMalloc(&g_sink, 4));
    const Shape shapes[] = {
        {"7b.gate_up.q4_k", 18944, 3584, true},
        {"7b.down.q4_k", 3584, 18944, false},
        {"7b.attn_out.q4_k", 3584, 3584, false},
        {"1.5b.gate_up.q4_k", 8960, 1536, true},
        {"1.5b.down.q4_k", 1536, 8960, false},
        {"0.5b.down.q4_k", 896, 4864, false},
    };
    for (const Shape& s : shapes) {
        Run r;
        r.s = s;
        r.base = s.swiglu ? matvec_q4_k_q8_swiglu : matvec_q4_k_q8_add;
        r.plane = s.swiglu ? mv_plane_swiglu : mv_plane_add;
        r.blkidx = s.swiglu ? nullptr : mv_blkidx_add;
        if (s.K % 256) {
            printf("%s: K = %d is not a multiple of 256 (no Q4_K rows)\n", s.name, s.K);
            continue;
        }
        const size_t nblocks = (size_t)s.K / 256 * s.rows;
        r.bytes = nblocks * 144;
        const size_t total = r.bytes * (s.swiglu ? 2 : 1);
        int copies = (int)((600ull << 20) / total) + 1;
        if (copies > 64) copies = 64;
        for (int i = 0; i < copies; i++) {
            Copy c{};
            CK(cudaMalloc(&c.w, r.bytes));
            CK(cudaMalloc(&c.p, r.bytes));
            fill<<<1024, 256>>>(c.w, r.bytes, 17 + i);
            fix_heads<<<1024, 256>>>(c.w, nblocks);
            repack<<<1024, 256>>>(c.w, nblocks, c.p);
            if (s.swiglu) {
                CK(cudaMalloc(&c.w2, r.bytes));
                CK(cudaMalloc(&c.p2, r.bytes));
                fill<<<1024, 256>>>(c.w2, r.bytes, 1017 + i);
                fix_heads<<<1024, 256>>>(c.w2, nblocks);
                repack<<<1024, 256>>>(c.w2, nblocks, c.p2);
            }
            r.c.push_back(c);
        }
        CK(cudaDeviceSynchronize());
        int occ_p = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.occ, (const void*)r.base, MATVEC_THREADS, 0));
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_p, (const void*)r.plane, MATVEC_THREADS, 0));
        cudaFuncAttributes fb, fp;
        CK(cudaFuncGetAttributes(&fb, (const void*)r.base));
        CK(cudaFuncGetAttributes(&fp, (const void*)r.plane));
        grid_of(s.rows, 64, s.K, r.occ * g_sms, r.grid, r.ks);
        const int reps = total > (100u << 20) ? 40 : 300;
        std::vector<float> ref = output(r, 0);
        size_t nan = 0;
        for (float f : ref) nan += !(f == f);
        printf("%-18s %6.1f MB grid %d ks %d occ base %d plane %d; regs base %d plane %d (NaN outputs %zu)\n", s.name, total / 1e6, r.grid,
               r.ks, r.occ, occ_p, fb.numRegs, fp.numRegs, nan);
        for (int round = 0; round < 2; round++) {
            double tb = time_us(r, 0, reps);
            printf("  round %d\n   %-10s %7.2f us %6.0f GB/s\n", round, "base", tb, total / (tb * 1e3));
            std::vector<float> o = output(r, 1);
            size_t diff = 0;
            for (size_t j = 0; j < o.size(); j++) diff += memcmp(&o[j], &ref[j], 4) != 0;
            double t = time_us(r, 1, reps);
            printf("   %-10s %7.2f us %6.0f GB/s  (%.3f of base)  rows differing from base: %zu\n", "plane", t, total / (t * 1e3), t / tb, diff);
            if (r.blkidx) {
                o = output(r, 3);
                diff = 0;
                for (size_t j = 0; j < o.size(); j++) diff += memcmp(&o[j], &ref[j], 4) != 0;
                t = time_us(r, 3, reps);
                printf("   %-10s %7.2f us %6.0f GB/s  (%.3f of base)  rows differing from base: %zu\n", "blkidx", t, total / (t * 1e3), t / tb, diff);
            }
            double tr = time_us(r, 2, reps);
            printf("   %-10s %7.2f us %6.0f GB/s\n", "read4", tr, total / (tr * 1e3));
        }
        fflush(stdout);
        for (Copy& c : r.c) {
            cudaFree(c.w);
            cudaFree(c.p);
            if (c.w2) cudaFree(c.w2);
            if (c.p2) cudaFree(c.p2);
        }
    }
    return 0;
}
