// q6plane.cu — how fast would the Q6_K decode matvecs (the 7B's half of the downs, every logits
// matvec) run if the weights were stored as aligned planes instead of GGUF's 210-byte blocks?
//
// A GGUF Q6_K block is ql[128] qh[64] scales[16] d(f16): 210 bytes, so block b of a row starts at
// 210·b, only 2-byte aligned. The generated kernel (`matvec_q6_k_q8_*`, q6k_add in quant.cuh)
// therefore loads each lane's 16-byte ql and qh runs as 5 words each and joins them by funnel
// shifts, and the scales and d as single bytes and a half-word (Nsight: 8.1 of each sector's 32
// bytes used per load, ../mv-ncu/). Here the same blocks are repacked into three planes per
// matrix, row-major like the blocks: ql+qh (192 bytes a block, 16-byte aligned), scales (16
// bytes), d (2 bytes). Same bytes in total. `plane` is the generated kernel's tile loop (the
// Q6_K branch of matvec_tile, its K split, group sums and epilogue, copied as they are in
// matvec.cuh) with q6k_add's loads replaced by one 16-byte load per run; the integers and the
// float order are the same, so the outputs must be the same bits (checked, every row).
//
// Timed over rotating weight copies (no L2 reuse), programmatic launches, as
// ../../h200/matvec-ring/mvbulk.cu times them, against a plain read of the same bytes.
// Build: ../build.sh (nvcc 13.0 from PyPI wheels: see there)
// where fam.cu is kernels_matvec.cu as build.rs generates it (main's build).
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

// Planes of one matrix: MatvecArgs.w = ql+qh plane, .w2 = scales plane, .xf = d plane (xf is
// unused by the q8 k-quant path); .row_bytes = the ql+qh plane's row stride (nb · 192).
template <bool LDG>
__device__ __forceinline__ uint4 ld_run(const u8* p) {
    if (LDG) return __ldg((const uint4*)p);
    return *(const uint4*)p;
}

template <bool LDG>
__device__ __forceinline__ void q6p_add(float& acc, const u8* qq, const u8* sc, const u8* dp, u32 blk, const Q6kLane& q, const Q6kAct& x,
                                        unsigned gm) {
    // blk: the block's index in the matrix (row · nb + sb); each plane is that many of its
    // block sizes in.
    const u8* p = qq + (size_t)blk * 192;
    const uint4 l = ld_run<LDG>(p + 16 * q.t), h = ld_run<LDG>(p + q.qh);
    const u32 ql[4] = {l.x, l.y, l.z, l.w}, qh[4] = {h.x, h.y, h.z, h.w};
    u32 wa[4], wb[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const u32 hb = qh[i] >> q.shift;
        wa[i] = (ql[i] & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4);
        wb[i] = ((ql[i] >> 4) & 0x0F0F0F0Fu) | (hb & 0x30303030u);
    }
    const int ta = (int)(i8)sc[(size_t)blk * 16 + q.g] * (dot16u(wa, x.a, 0) - 32 * x.bsa);
    const int tb = (int)(i8)sc[(size_t)blk * 16 + 4 + q.g] * (dot16u(wb, x.b, 0) - 32 * x.bsb);
    const int sa = ta + __shfl_xor_sync(gm, ta, 1);
    const int sbm = tb + __shfl_xor_sync(gm, tb, 1);
    const int isum = __shfl_sync(gm, (q.t & 1) ? sbm : sa, q.src);
    acc += __fmul_rn(__fmul_rn(f16_to_f32(*(const u16*)(dp + (size_t)blk * 2)), x.dk), (float)isum);
}

// q6k_add over 224-byte blocks (the GGUF block, then 14 bytes of padding): the same block-local
// offsets, but every block starts 16-byte aligned, so each run is one 16-byte load.
__device__ __forceinline__ void q6pad_add(float& acc, const u8* row, int sb, const Q6kLane& q, const Q6kAct& x, unsigned gm) {
    const u8* p = row + sb * 224;
    const uint4 l = *(const uint4*)(p + 16 * q.t), h = *(const uint4*)(p + q.qh);
    const u32 ql[4] = {l.x, l.y, l.z, l.w}, qh[4] = {h.x, h.y, h.z, h.w};
    u32 wa[4], wb[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const u32 hb = qh[i] >> q.shift;
        wa[i] = (ql[i] & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4);
        wb[i] = ((ql[i] >> 4) & 0x0F0F0F0Fu) | (hb & 0x30303030u);
    }
    const int ta = (int)(i8)p[192 + q.g] * (dot16u(wa, x.a, 0) - 32 * x.bsa);
    const int tb = (int)(i8)p[196 + q.g] * (dot16u(wb, x.b, 0) - 32 * x.bsb);
    const int sa = ta + __shfl_xor_sync(gm, ta, 1);
    const int sbm = tb + __shfl_xor_sync(gm, tb, 1);
    const int isum = __shfl_sync(gm, (q.t & 1) ? sbm : sa, q.src);
    acc += __fmul_rn(__fmul_rn(f16_to_f32(*(const u16*)(p + 208)), x.dk), (float)isum);
}

// q6k_add over the GGUF blocks addressed as the plane variant addresses its blocks (a 32-bit block
// index, blk = row · nb + sb): the control that tells the planes' share of a gain from the code's.
__device__ __forceinline__ void q6idx_add(float& acc, const u8* w, u32 blk, const Q6kLane& q, const Q6kAct& x, unsigned gm) {
    q6k_add(acc, w + (size_t)blk * 210, 0, q, x, gm);
}

// q6k_add over per-row planes: a row is [ql+qh: nb · 192][scales: nb · 16][d: nb · 2], padded to a
// multiple of 16 bytes (row_bytes), so a row pointer and nb find every plane.
__device__ __forceinline__ void q6row_add(float& acc, const u8* row, int nb, int sb, const Q6kLane& q, const Q6kAct& x, unsigned gm) {
    const u8* p = row + sb * 192;
    const u8* sc = row + nb * 192 + sb * 16;
    const u8* dp = row + nb * 208 + sb * 2;
    const uint4 l = *(const uint4*)(p + 16 * q.t), h = *(const uint4*)(p + q.qh);
    const u32 ql[4] = {l.x, l.y, l.z, l.w}, qh[4] = {h.x, h.y, h.z, h.w};
    u32 wa[4], wb[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const u32 hb = qh[i] >> q.shift;
        wa[i] = (ql[i] & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4);
        wb[i] = ((ql[i] >> 4) & 0x0F0F0F0Fu) | (hb & 0x30303030u);
    }
    const int ta = (int)(i8)sc[q.g] * (dot16u(wa, x.a, 0) - 32 * x.bsa);
    const int tb = (int)(i8)sc[4 + q.g] * (dot16u(wb, x.b, 0) - 32 * x.bsb);
    const int sa = ta + __shfl_xor_sync(gm, ta, 1);
    const int sbm = tb + __shfl_xor_sync(gm, tb, 1);
    const int isum = __shfl_sync(gm, (q.t & 1) ? sbm : sa, q.src);
    acc += __fmul_rn(__fmul_rn(f16_to_f32(*(const u16*)dp), x.dk), (float)isum);
}

// matvec_tile<TQ6_K, ACT_Q8, EPI> (matvec.cuh) over planes (PAD 1: over padded blocks; PAD 2: over per-row planes;
// PAD 3: over the GGUF blocks by block index).
template <int EPI, bool LDG, int PAD>
__device__ __forceinline__ void tile_plane(const MatvecArgs& g, const Act& a, int base, float* part) {
    using W = TQ6_K;
    constexpr int R = RowsPerWarp<W>::v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    const int nb = g.K / 256;
    const u8* wq = (const u8*)g.w;
    const u8* ws = (const u8*)g.w2;
    const u8* wd = (const u8*)g.xf;
    float* out = (float*)g.out;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    const Q6kLane q6 = q6k_lane();
    const unsigned gm = 0xFFu << (lane & 24);
    for (int u = ks * L + li; u < units; u += KS * L) {
        const int sb = (unsigned)u / 8u;
        const Q6kAct x = q6k_act(a, q6, sb);
#pragma unroll
        for (int r = 0; r < R; r++)
            if (r < valid) {
                if (PAD == 1)
                    q6pad_add(acc[r], wq + (size_t)(r0 + r) * g.row_bytes, sb, q6, x, gm);
                else if (PAD == 3)
                    q6idx_add(acc[r], wq, (u32)(r0 + r) * (u32)nb + (u32)sb, q6, x, gm);
                else if (PAD == 2)
                    q6row_add(acc[r], wq + (size_t)(r0 + r) * g.row_bytes, nb, sb, q6, x, gm);
                else
                    q6p_add<LDG>(acc[r], wq, ws, wd, (u32)(r0 + r) * (u32)nb + (u32)sb, q6, x, gm);
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
            out[r0 + r] = EPI == EPI_ADD ? __fadd_rn(acc[r], ((const float*)g.extra)[r0 + r]) : acc[r];
        }
}

template <int EPI, bool LDG, int PAD>
__global__ void __launch_bounds__(256, 4) mv_plane(MatvecArgs g) {
    __shared__ float part[MATVEC_PART_FLOATS];
    int rows_per_cta = matvec_tile_rows<TQ6_K>(g.K, g.ksplit);
    if (g.prefetch && threadIdx.x < 32) l2_prefetch_rows<EPI>(g, blockIdx.x * rows_per_cta, rows_per_cta);
    grid_dep_enter();
    Act a = act_view(0, g.q0, g.d0, g.qk, g.dk, g.bs);
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += gridDim.x * rows_per_cta) tile_plane<EPI, LDG, PAD>(g, a, base, part);
}

__global__ void repack(const u8* w, size_t nblocks, int nb, size_t rs, u8* qq, u8* sc, u8* dp, u8* pad, u8* rp) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nblocks; i += (size_t)gridDim.x * blockDim.x) {
        const u8* b = w + i * 210;
        for (int j = 0; j < 224; j++) pad[i * 224 + j] = j < 210 ? b[j] : 0;
        u8* row = rp + (i / nb) * rs;
        const size_t sb = i % nb;
        for (int j = 0; j < 192; j++) row[sb * 192 + j] = b[j];
        for (int j = 0; j < 16; j++) row[nb * 192 + sb * 16 + j] = b[192 + j];
        row[nb * 208 + sb * 2] = b[208];
        row[nb * 208 + sb * 2 + 1] = b[209];
        for (int j = 0; j < 192; j++) qq[i * 192 + j] = b[j];
        for (int j = 0; j < 16; j++) sc[i * 16 + j] = b[192 + j];
        dp[i * 2] = b[208];
        dp[i * 2 + 1] = b[209];
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
// A sane f16 d (0.0039) in every block, so the sums are finite.
__global__ void fix_d(u8* p, size_t nblocks) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nblocks; i += (size_t)gridDim.x * blockDim.x) {
        p[i * 210 + 208] = 0x00;
        p[i * 210 + 209] = 0x1c;
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
    bool add;
};
struct Copy {
    u8 *w, *qq, *sc, *dp, *pad, *rp;
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

struct Run {
    Shape s;
    std::vector<Copy> c;
    size_t bytes;
    int grid, ks, occ;
    Kfn base, plane, plane_ldg, padded, rowplane, blkidx;
};

// which: 0 base, 1 plane, 2 plane (ld.global.nc), 3 read4 of the GGUF bytes, 4 padded blocks, 5 per-row planes,
// 6 GGUF blocks by block index
static void launch(const Run& r, int i, int which) {
    const Copy& c = r.c[i % r.c.size()];
    MatvecArgs a;
    memset(&a, 0, sizeof(a));
    a.qk = (u64)g_qk, a.dk = (u64)g_dk, a.bs = (u64)g_bs, a.out = (u64)g_out, a.extra = (u64)g_extra;
    a.rows = r.s.rows, a.K = r.s.K, a.ksplit = r.ks, a.nb = 1;
    a.prefetch = r.grid <= r.occ * g_sms ? 1 : 0;
    cudaLaunchAttribute at[1];
    if (which == 3) {
        cudaLaunchConfig_t cfg = config(4 * g_sms, 256, at);
        CK(cudaLaunchKernelEx(&cfg, read4, (const uint4*)c.w, r.bytes / 16, g_sink));
        return;
    }
    if (which == 0 || which == 6) {
        a.w = (u64)c.w;
        a.row_bytes = r.s.K / 256 * 210;
    } else if (which == 4) {
        a.w = (u64)c.pad;
        a.row_bytes = r.s.K / 256 * 224;
    } else if (which == 5) {
        a.w = (u64)c.rp;
        a.row_bytes = (r.s.K / 256 * 210 + 15) / 16 * 16;
    } else {
        a.w = (u64)c.qq, a.w2 = (u64)c.sc, a.xf = (u64)c.dp;
        a.row_bytes = r.s.K / 256 * 192;
    }
    cudaLaunchConfig_t cfg = config(r.grid, MATVEC_THREADS, at);
    CK(cudaLaunchKernelEx(&cfg, which == 0 ? r.base : which == 1 ? r.plane : which == 2 ? r.plane_ldg : which == 4 ? r.padded : which == 5 ? r.rowplane : r.blkidx, a));
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
        {"7b.down.q6_k", 3584, 18944, true},
        {"7b.logits.q6_k", 152064, 3584, false},
        {"1.5b.down.q6_k", 1536, 8960, true},
        {"1.5b.logits.q6_k", 151936, 1536, false},
        {"0.5b.down.q6_k", 896, 4864, true},
    };
    for (const Shape& s : shapes) {
        Run r;
        r.s = s;
        r.base = s.add ? matvec_q6_k_q8_add : matvec_q6_k_q8_none;
        r.plane = s.add ? mv_plane<EPI_ADD, false, 0> : mv_plane<EPI_NONE, false, 0>;
        r.plane_ldg = s.add ? mv_plane<EPI_ADD, true, 0> : mv_plane<EPI_NONE, true, 0>;
        r.padded = s.add ? mv_plane<EPI_ADD, false, 1> : mv_plane<EPI_NONE, false, 1>;
        r.rowplane = s.add ? mv_plane<EPI_ADD, false, 2> : mv_plane<EPI_NONE, false, 2>;
        r.blkidx = s.add ? mv_plane<EPI_ADD, false, 3> : mv_plane<EPI_NONE, false, 3>;
        const size_t nb = (size_t)s.K / 256, nblocks = nb * s.rows;
        r.bytes = nblocks * 210;
        int copies = (int)((600ull << 20) / r.bytes) + 1;  // rotated per launch (the padded copies are 224/210 as large)
        if (copies > 64) copies = 64;
        for (int i = 0; i < copies; i++) {
            Copy c;
            CK(cudaMalloc(&c.w, r.bytes));
            CK(cudaMalloc(&c.qq, nblocks * 192));
            CK(cudaMalloc(&c.sc, nblocks * 16));
            CK(cudaMalloc(&c.dp, nblocks * 2));
            CK(cudaMalloc(&c.pad, nblocks * 224));
            CK(cudaMalloc(&c.rp, (nb * 210 + 15) / 16 * 16 * s.rows));
            fill<<<1024, 256>>>(c.w, r.bytes, 17 + i);
            fix_d<<<1024, 256>>>(c.w, nblocks);
            repack<<<1024, 256>>>(c.w, nblocks, (int)nb, (nb * 210 + 15) / 16 * 16, c.qq, c.sc, c.dp, c.pad, c.rp);
            r.c.push_back(c);
        }
        CK(cudaDeviceSynchronize());
        int occ_p = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.occ, (const void*)r.base, MATVEC_THREADS, 0));
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_p, (const void*)r.plane, MATVEC_THREADS, 0));
        cudaFuncAttributes fb, fp, fl;
        CK(cudaFuncGetAttributes(&fb, (const void*)r.base));
        CK(cudaFuncGetAttributes(&fp, (const void*)r.plane));
        CK(cudaFuncGetAttributes(&fl, (const void*)r.plane_ldg));
        grid_of(s.rows, 32, s.K, r.occ * g_sms, r.grid, r.ks);
        const int reps = r.bytes > (100u << 20) ? 40 : 300;
        std::vector<float> ref = output(r, 0);
        size_t nan = 0;
        for (float f : ref) nan += !(f == f);
        printf("%-18s %6.1f MB grid %d ks %d occ base %d plane %d; regs base %d plane %d plane.ldg %d (NaN outputs %zu)\n", s.name, r.bytes / 1e6,
               r.grid, r.ks, r.occ, occ_p, fb.numRegs, fp.numRegs, fl.numRegs, nan);
        for (int round = 0; round < 2; round++) {
            double tb = time_us(r, 0, reps);
            printf("  round %d\n   %-10s %7.2f us %6.0f GB/s\n", round, "base", tb, r.bytes / (tb * 1e3));
            for (int w : {1, 2, 4, 5, 6}) {
                std::vector<float> o = output(r, w);
                size_t diff = 0;
                for (size_t j = 0; j < o.size(); j++) diff += memcmp(&o[j], &ref[j], 4) != 0;
                double t = time_us(r, w, reps);
                printf("   %-10s %7.2f us %6.0f GB/s  (%.3f of base)  rows differing from base: %zu\n", w == 1 ? "plane" : w == 2 ? "plane.ldg" : w == 4 ? "padded" : w == 5 ? "rowplane" : "blkidx", t,
                       r.bytes / (t * 1e3), t / tb, diff);
            }
            double tr = time_us(r, 3, reps);
            printf("   %-10s %7.2f us %6.0f GB/s\n", "read4", tr, r.bytes / (tr * 1e3));
        }
        fflush(stdout);
        for (Copy& c : r.c) {
            cudaFree(c.w);
            cudaFree(c.qq);
            cudaFree(c.sc);
            cudaFree(c.dp);
            cudaFree(c.pad);
            cudaFree(c.rp);
        }
    }
    return 0;
}
