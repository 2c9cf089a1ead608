// mvbench2.cu — why do the big decode matvecs stream at 40-55% of the H200's read rate?
// Times graphrun's generated decode matvec kernels (the matvec family source, included as FAM)
// on the Qwen2.5 7B/1.5B/0.5B shapes over rotating weight copies (no L2 reuse), against:
//   cap      the same generated kernel with its grid capped at one wave (resident CTAs), so
//            CTAs loop over tiles instead of the hardware launching later waves;
//   pfD      a one-wave grid whose CTAs prefetch (sm_90 bulk L2 prefetch) the tile they take
//            D rounds later while they work on the current one (matvec_tile unchanged: the
//            same lanes, units, K split and sums, so the output must be bit-identical);
//   read     a plain 16-byte read of the same bytes (what the memory gives a kernel of that
//            size, launched back to back).
// Every variant's output is compared bit for bit with the generated kernel's.
// Build: nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam.cu"' mvbench2.cu -o mvbench2
// Run:   ./mvbench2 [pdl]   (MVB_DUMP=DIR writes each shape's output of the generated kernel to DIR)
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
#include <algorithm>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

template <class W, int EPI>
__device__ __forceinline__ void mvs_body(const MatvecArgs& g, int dist) {
    __shared__ float part[MATVEC_PART_FLOATS];
    int rpc = matvec_tile_rows<W>(g.K, g.ksplit);
    int ntiles = (g.rows + rpc - 1) / rpc;
    int warp = threadIdx.x >> 5;
    auto pf = [&](int t) {
        if (t >= ntiles) return;
        int first = t * rpc;
        size_t at = (size_t)first * g.row_bytes, n = (size_t)min(rpc, g.rows - first) * g.row_bytes;
        l2_prefetch_range((const u8*)g.w + at, n);
        if (EPI == EPI_SWIGLU) l2_prefetch_range((const u8*)g.w2 + at, n);
    };
    if (warp == 0)
        for (int j = 0; j < dist; j++) pf(blockIdx.x + j * gridDim.x);
    grid_dep_enter();
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    for (int t = blockIdx.x; t < ntiles; t += gridDim.x) {
        if (warp == 0 && dist > 0) pf(t + dist * gridDim.x);
        matvec_tile<W, ACT_Q8, EPI>(g, a, t * rpc, part);
    }
}
// Launch bounds as the generated wrappers have them (none under SwiGLU).
template <class W> __global__ void __launch_bounds__(256, 4) mvs_add(MatvecArgs g, int dist) { mvs_body<W, EPI_ADD>(g, dist); }
template <class W> __global__ void __launch_bounds__(256, 4) mvs_none(MatvecArgs g, int dist) { mvs_body<W, EPI_NONE>(g, dist); }
template <class W> __global__ void mvs_swiglu(MatvecArgs g, int dist) { mvs_body<W, EPI_SWIGLU>(g, dist); }

__global__ void read16(const uint4* p, size_t n, u32* sink) {
    grid_dep_enter();
    u32 x = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = p[i];
        x ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (x == 0x12345678u) *sink = x;
}

typedef void (*Kfn)(MatvecArgs);
typedef void (*Vfn)(MatvecArgs, int);

struct Shape {
    const char* name;
    Kfn fn;
    Vfn vfn;
    int qk, bytes, unit;  // block elements, block bytes, lane unit
    int rows, K;
    bool swiglu;
};

__global__ void fill(u8* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = (u8)x;
    }
}

static int lanes(int units) { int l = 32; while (l > 1 && l / 2 >= units) l /= 2; return l; }

// Mirrors src/exec/cuda/geometry.rs matvec_grid (RowsPerWarp 4 for every type measured here).
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

static u8 *g_qk, *g_dk, *g_bs, *g_q0, *g_d0, *g_out, *g_extra;
static u32* g_sink;
static int g_sms;
static bool g_pdl;

struct Prepared {
    Shape s;
    std::vector<u8*> w, w2;
    size_t mbytes;  // bytes of one matrix
    int grid, ks, occ, vocc;
    MatvecArgs a;
};

static Prepared prepare(const Shape& s, int copies) {
    Prepared p;
    p.s = s;
    size_t row_bytes = (size_t)s.K / s.qk * s.bytes;
    p.mbytes = row_bytes * s.rows;
    for (int c = 0; c < copies; c++) {
        u8* w; CK(cudaMalloc(&w, p.mbytes)); fill<<<1024, 256>>>(w, p.mbytes, 17 + c); p.w.push_back(w);
        if (s.swiglu) { u8* w2; CK(cudaMalloc(&w2, p.mbytes)); fill<<<1024, 256>>>(w2, p.mbytes, 1017 + c); p.w2.push_back(w2); }
    }
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&p.occ, (const void*)s.fn, MATVEC_THREADS, 0));
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&p.vocc, (const void*)s.vfn, MATVEC_THREADS, 0));
    grid_of(s.rows, s.unit, s.K, p.occ * g_sms, p.grid, p.ks);
    memset(&p.a, 0, sizeof(p.a));
    p.a.xf = 0; p.a.q0 = (u64)g_q0; p.a.d0 = (u64)g_d0; p.a.qk = (u64)g_qk; p.a.dk = (u64)g_dk; p.a.bs = (u64)g_bs;
    p.a.out = (u64)g_out; p.a.extra = (u64)g_extra;
    p.a.rows = s.rows; p.a.K = s.K; p.a.row_bytes = (int)row_bytes; p.a.ksplit = p.ks; p.a.nb = 1;
    return p;
}

static void release(Prepared& p) {
    for (u8* w : p.w) cudaFree(w);
    for (u8* w : p.w2) cudaFree(w);
}

static cudaLaunchConfig_t config(int grid, cudaLaunchAttribute* at) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(MATVEC_THREADS);
    cfg.stream = 0;
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = g_pdl ? 1 : 0;
    return cfg;
}

// variant: -1 = generated kernel, its own grid; -2 = generated kernel, grid capped at one
// wave; D >= 0 = mvs with prefetch distance D on a one-wave grid; -3 = read16 of the bytes.
static void launch(const Prepared& p, int c, int variant) {
    MatvecArgs a = p.a;
    a.w = (u64)p.w[c % p.w.size()];
    a.w2 = p.s.swiglu ? (u64)p.w2[c % p.w2.size()] : 0;
    cudaLaunchAttribute at[1];
    if (variant == -1 || variant == -2) {
        int grid = variant == -1 ? p.grid : std::min(p.grid, p.occ * g_sms);
        cudaLaunchConfig_t cfg = config(grid, at);
        CK(cudaLaunchKernelEx(&cfg, p.s.fn, a));
    } else if (variant == -3) {
        cudaLaunchConfig_t cfg = config(4 * g_sms, at);
        size_t n = p.mbytes / 16;
        CK(cudaLaunchKernelEx(&cfg, read16, (const uint4*)a.w, n, g_sink));
        if (p.s.swiglu) CK(cudaLaunchKernelEx(&cfg, read16, (const uint4*)a.w2, n, g_sink));
    } else {
        cudaLaunchConfig_t cfg = config(std::min(p.grid, p.vocc * g_sms), at);
        CK(cudaLaunchKernelEx(&cfg, p.s.vfn, a, variant));
    }
}

static double time_us(const Prepared& p, int variant, int reps) {
    static cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
    for (int i = 0; i < 20; i++) launch(p, i, variant);
    CK(cudaDeviceSynchronize());
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; i++) launch(p, i, variant);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1000.0 / reps;
}

static std::vector<float> output(const Prepared& p, int variant) {
    CK(cudaMemset(g_out, 0xFF, 4 * (size_t)p.s.rows));
    launch(p, 0, variant);
    CK(cudaDeviceSynchronize());
    std::vector<float> o(p.s.rows);
    CK(cudaMemcpy(o.data(), g_out, 4 * o.size(), cudaMemcpyDeviceToHost));
    return o;
}

int main(int argc, char** argv) {
    g_pdl = argc > 1 && !strcmp(argv[1], "pdl");
    int dev; CK(cudaGetDevice(&dev)); cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, dev));
    g_sms = prop.multiProcessorCount;
    printf("device %s, %d SMs, L2 %d MB, %s launches\n", prop.name, g_sms, prop.l2CacheSize >> 20, g_pdl ? "programmatic" : "plain");
    size_t K_MAX = 18944;
    CK(cudaMalloc(&g_qk, K_MAX)); fill<<<64, 256>>>(g_qk, K_MAX, 5);
    CK(cudaMalloc(&g_q0, K_MAX)); fill<<<64, 256>>>(g_q0, K_MAX, 6);
    std::vector<float> small(K_MAX, 0.01f);
    CK(cudaMalloc(&g_dk, K_MAX * 4)); CK(cudaMemcpy(g_dk, small.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&g_d0, K_MAX * 4)); CK(cudaMemcpy(g_d0, small.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&g_bs, K_MAX * 4)); CK(cudaMemset(g_bs, 0, K_MAX * 4));
    const size_t OUT_MAX = 160000;
    CK(cudaMalloc(&g_out, 4 * OUT_MAX)); CK(cudaMalloc(&g_extra, 4 * OUT_MAX)); CK(cudaMemset(g_extra, 0, 4 * OUT_MAX));
    CK(cudaMalloc(&g_sink, 4));

    Shape shapes[] = {
        {"7b.gate_up.q4_k", matvec_q4_k_q8_swiglu, mvs_swiglu<TQ4_K>, 256, 144, 64, 18944, 3584, true},
        {"7b.down.q6_k", matvec_q6_k_q8_add, mvs_add<TQ6_K>, 256, 210, 32, 3584, 18944, false},
        {"7b.down.q4_k", matvec_q4_k_q8_add, mvs_add<TQ4_K>, 256, 144, 64, 3584, 18944, false},
        {"7b.attn_out.q4_k", matvec_q4_k_q8_add, mvs_add<TQ4_K>, 256, 144, 64, 3584, 3584, false},
        {"7b.logits.q6_k", matvec_q6_k_q8_none, mvs_none<TQ6_K>, 256, 210, 32, 152064, 3584, false},
        {"1.5b.gate_up.q4_k", matvec_q4_k_q8_swiglu, mvs_swiglu<TQ4_K>, 256, 144, 64, 8960, 1536, true},
        {"1.5b.down.q6_k", matvec_q6_k_q8_add, mvs_add<TQ6_K>, 256, 210, 32, 1536, 8960, false},
        {"1.5b.attn_out.q4_k", matvec_q4_k_q8_add, mvs_add<TQ4_K>, 256, 144, 64, 1536, 1536, false},
        {"1.5b.logits.q6_k", matvec_q6_k_q8_none, mvs_none<TQ6_K>, 256, 210, 32, 151936, 1536, false},
        {"0.5b.gate_up.q5_0", matvec_q5_0_q8_swiglu, mvs_swiglu<TQ5_0>, 32, 22, 32, 4864, 896, true},
        {"0.5b.down.q8_0", matvec_q8_0_q8_add, mvs_add<TQ8_0>, 32, 34, 32, 896, 4864, false},
    };
    const int variants[] = {-1, -2, 0, 1, 2, -3};
    const char* vname[] = {"base", "cap", "pf0", "pf1", "pf2", "read"};
    printf("%-20s %6s %5s %3s %4s %4s", "shape", "MB", "grid", "ks", "occ", "vocc");
    for (const char* n : vname) printf(" %15s", n);
    printf("   (us and GB/s; pf0/pf1/pf2 and cap outputs vs base)\n");
    for (const Shape& s : shapes) {
        size_t mb = (size_t)s.K / s.qk * s.bytes * s.rows * (s.swiglu ? 2 : 1);
        int copies = (int)((600ull << 20) / mb) + 1;
        if (copies > 64) copies = 64;
        Prepared p = prepare(s, copies);
        int reps = mb > (100u << 20) ? 40 : 300;
        std::vector<float> ref = output(p, -1);
        if (const char* dir = getenv("MVB_DUMP")) {  // the generated kernel's output, for cross-build comparison
            std::string f = std::string(dir) + "/" + s.name + ".bin";
            FILE* fp = fopen(f.c_str(), "wb");
            if (fp) { fwrite(ref.data(), 4, ref.size(), fp); fclose(fp); }
        }
        std::string eq;
        for (int v : {-2, 0, 1, 2}) {
            std::vector<float> o = output(p, v);
            bool same = memcmp(o.data(), ref.data(), 4 * ref.size()) == 0;
            eq += same ? "=" : "X";
        }
        printf("%-20s %6.1f %5d %3d %4d %4d", s.name, mb / 1e6, p.grid, p.ks, p.occ, p.vocc);
        for (int v : variants) {
            double us = time_us(p, v, reps);
            printf(" %7.2f/%6.0f", us, mb / (us * 1e3));
        }
        printf("   bits %s\n", eq.c_str());
        release(p);
    }
    // 28 layers of the 7B: attn_out, gate+up, down (Q6_K every third layer), distinct weights
    // per layer, for each variant.
    {
        Shape so = shapes[3], sg = shapes[0], sd6 = shapes[1], sd4 = shapes[2];
        std::vector<Prepared> L;
        size_t bytes = 0;
        for (int l = 0; l < 28; l++) {
            L.push_back(prepare(so, 1)); L.push_back(prepare(sg, 1)); L.push_back(prepare(l % 3 == 0 ? sd6 : sd4, 1));
            for (int j = 0; j < 3; j++) bytes += L[L.size() - 1 - j].mbytes * (L[L.size() - 1 - j].s.swiglu ? 2 : 1);
        }
        cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        for (int vi = 0; vi < 6; vi++) {
            int v = variants[vi];
            for (int r = 0; r < 3; r++) for (auto& p : L) launch(p, 0, v);
            CK(cudaDeviceSynchronize());
            const int LR = 20;
            CK(cudaEventRecord(e0));
            for (int r = 0; r < LR; r++) for (auto& p : L) launch(p, 0, v);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
            double us = ms * 1000.0 / LR;
            printf("7b.28layers(out+gateup+down) %-5s us=%.1f GBps=%.0f per_layer_us=%.2f\n", vname[vi], us, bytes / (us * 1e3), us / 28);
        }
    }
    return 0;
}
