// mvlanes.cu — does a decode matvec row want fewer lanes than the power of two that covers
// its units? graphrun's matvec tiles give a row L lanes, L = the smallest power of two >= the
// row's units, at most 32 (kernels/matvec.cuh, lanes_per_row). A row of 48 units (the 1.5B's
// K = 1,536 under Q6_K, Q5_0, Q8_0) then takes two passes of 32 lanes, the second half idle:
// 25% of the lanes' loads and integer work never issue. L = 16 covers it in 3 full passes
// (two rows side by side a warp). This times the generated decode matvec kernels (the
// matvec family source of a release build, included as FAM, with `lanes_per_row` made to
// return `g_force_lanes` when that is set: build.sh) on the Qwen2.5 0.5B/1.5B/7B shapes,
// for every lane width L (a row's lanes) × K split ks (warps sharing a row set), over
// rotating weight copies (no L2 reuse), one tile a CTA as the host launches them
// (src/exec/cuda/geometry.rs matvec_grid). The default (L, ks) is what main launches.
// A different L or ks sums a row's units in another order: outputs are compared with the
// default's as relative differences (reassociation is ~1e-6 of the row's magnitude), not bits.
// Build: build.sh (nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam.cu"' mvlanes.cu -o mvlanes).
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

typedef void (*Kfn)(MatvecArgs);

struct Shape {
    const char* name;
    Kfn fn;
    int qk, bytes, unit;  // elements and bytes of a block; elements of a matvec unit (W::UNIT)
    int rows, K;
    bool swiglu;
    int min_lanes;  // Q6_K: 8-lane super-block groups; Q4_K: quads; legacy: 4 (a choice)
};

__global__ void fill(u8* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = (u8)x;
    }
}
// Finite, small block scales (f16 at d_at; Q4_K's dmin after it) so the sums are numbers.
__global__ void fix_scales(u8* p, size_t nblocks, int bytes, int d_at, int n16) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nblocks; i += (size_t)gridDim.x * blockDim.x) {
        u8* b = p + i * bytes + d_at;
        for (int j = 0; j < n16; j++) { b[2 * j] = 0x00; b[2 * j + 1] = 0x1c; }  // f16 0.0039
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

static int default_lanes(int units) { int l = 32; while (l > 1 && l / 2 >= units) l /= 2; return l; }

// Mirrors src/exec/cuda/geometry.rs matvec_grid for lane width L (main: L = default_lanes).
static int default_ks(int rows, int units, int L, int slots) {
    int per_set = 4 * (32 / L), sets = (rows + per_set - 1) / per_set, ks = 1;
    while (ks < 8 && sets * ks < 2048 && units >= L * ks) ks *= 2;
    auto g = [&](int k) { int per = (8 / k) * per_set; return (rows + per - 1) / per; };
    auto fillf = [&](int k) { int gg = g(k); return (double)gg / (double)(((gg + slots - 1) / slots) * slots); };
    if (g(ks) > slots) {
        int best = ks;
        for (int c : {ks * 2, ks * 4, ks * 8})
            if (c <= 8 && units > L * (c - 1) && fillf(c) > fillf(best) + 0.1) best = c;
        ks = best;
    }
    return ks;
}

static u8 *g_q0, *g_d0, *g_qk, *g_dk, *g_bs, *g_out, *g_extra;
static u32* g_sink;
static int g_sms;

struct Run {
    const Shape* s;
    std::vector<u8*> w, w2;
    size_t mbytes;
    int occ;
};

static void launch(const Run& r, int c, int L, int ks) {
    const Shape& s = *r.s;
    MatvecArgs a;
    memset(&a, 0, sizeof(a));
    a.w = (u64)r.w[c % r.w.size()];
    a.w2 = s.swiglu ? (u64)r.w2[c % r.w2.size()] : 0;
    a.q0 = (u64)g_q0; a.d0 = (u64)g_d0; a.qk = (u64)g_qk; a.dk = (u64)g_dk; a.bs = (u64)g_bs;
    a.out = (u64)g_out; a.extra = (u64)g_extra;
    a.rows = s.rows; a.K = s.K; a.row_bytes = s.K / s.qk * s.bytes; a.ksplit = ks; a.nb = 1;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.stream = 0; cfg.attrs = at; cfg.numAttrs = 1;
    if (L == 0) {  // read4: a plain read of the same bytes
        cfg.gridDim = dim3(4 * g_sms); cfg.blockDim = dim3(256);
        CK(cudaLaunchKernelEx(&cfg, read4, (const uint4*)a.w, r.mbytes / 16, g_sink));
        if (s.swiglu) CK(cudaLaunchKernelEx(&cfg, read4, (const uint4*)a.w2, r.mbytes / 16, g_sink));
        return;
    }
    int per = (8 / ks) * 4 * (32 / L), grid = (s.rows + per - 1) / per;
    a.prefetch = grid <= r.occ * g_sms ? 1 : 0;  // the host's rule for one programmatic wave
    cfg.gridDim = dim3(grid); cfg.blockDim = dim3(MATVEC_THREADS);
    CK(cudaLaunchKernelEx(&cfg, s.fn, a));
}

static void set_lanes(int L) { CK(cudaMemcpyToSymbol(g_force_lanes, &L, sizeof(int))); }

static double time_us(const Run& r, int L, int ks, int reps) {
    static cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
    for (int i = 0; i < 20; i++) launch(r, i, L, ks);
    CK(cudaDeviceSynchronize());
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; i++) launch(r, i, L, ks);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1000.0 / reps;
}

static std::vector<float> output(const Run& r, int L, int ks) {
    CK(cudaMemset(g_out, 0xFF, 4 * (size_t)r.s->rows));  // NaN: a row not written shows
    launch(r, 0, L, ks);
    CK(cudaDeviceSynchronize());
    std::vector<float> o(r.s->rows);
    CK(cudaMemcpy(o.data(), g_out, 4 * o.size(), cudaMemcpyDeviceToHost));
    return o;
}

int main() {
    int dev; CK(cudaGetDevice(&dev)); cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, dev));
    g_sms = prop.multiProcessorCount;
    printf("device %s, %d SMs, L2 %d MB; programmatic launches, one tile a CTA\n", prop.name, g_sms, prop.l2CacheSize >> 20);
    const size_t K_MAX = 18944, OUT_MAX = 160000;
    CK(cudaMalloc(&g_q0, K_MAX)); fill<<<64, 256>>>(g_q0, K_MAX, 3);
    CK(cudaMalloc(&g_qk, K_MAX)); fill<<<64, 256>>>(g_qk, K_MAX, 5);
    std::vector<float> small(K_MAX, 0.01f);
    CK(cudaMalloc(&g_d0, K_MAX * 4)); CK(cudaMemcpy(g_d0, small.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&g_dk, K_MAX * 4)); CK(cudaMemcpy(g_dk, small.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    std::vector<int> bsums(K_MAX);
    for (size_t i = 0; i < K_MAX; i++) bsums[i] = (int)(i * 37 % 200) - 100;
    CK(cudaMalloc(&g_bs, K_MAX * 4)); CK(cudaMemcpy(g_bs, bsums.data(), K_MAX * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&g_out, 4 * OUT_MAX)); CK(cudaMalloc(&g_extra, 4 * OUT_MAX)); CK(cudaMemset(g_extra, 0, 4 * OUT_MAX));
    CK(cudaMalloc(&g_sink, 4));

    // name, kernel, qk, bytes, unit, rows, K, swiglu, min lanes (synthetic presets' types: src/model/synth.rs)
    const Shape shapes[] = {
        {"7b.gate_up.q4_k", matvec_q4_k_q8_swiglu, 256, 144, 64, 18944, 3584, true, 4},
        {"7b.down.q6_k", matvec_q6_k_q8_add, 256, 210, 32, 3584, 18944, false, 8},
        {"7b.down.q4_k", matvec_q4_k_q8_add, 256, 144, 64, 3584, 18944, false, 4},
        {"7b.attn_out.q4_k", matvec_q4_k_q8_add, 256, 144, 64, 3584, 3584, false, 4},
        {"7b.logits.q6_k", matvec_q6_k_q8_none, 256, 210, 32, 152064, 3584, false, 8},
        {"1.5b.gate_up.q4_k", matvec_q4_k_q8_swiglu, 256, 144, 64, 8960, 1536, true, 4},
        {"1.5b.down.q6_k", matvec_q6_k_q8_add, 256, 210, 32, 1536, 8960, false, 8},
        {"1.5b.down.q4_k", matvec_q4_k_q8_add, 256, 144, 64, 1536, 8960, false, 4},
        {"1.5b.attn_out.q4_k", matvec_q4_k_q8_add, 256, 144, 64, 1536, 1536, false, 4},
        {"1.5b.logits.q6_k", matvec_q6_k_q8_none, 256, 210, 32, 151936, 1536, false, 8},
        {"0.5b.gate_up.q5_0", matvec_q5_0_q8_swiglu, 32, 22, 32, 4864, 896, true, 4},
        {"0.5b.down.q6_k", matvec_q6_k_q8_add, 256, 210, 32, 896, 4864, false, 8},
        {"0.5b.down.q4_k", matvec_q4_k_q8_add, 256, 144, 64, 896, 4864, false, 4},
        {"0.5b.attn_out.q5_0", matvec_q5_0_q8_add, 32, 22, 32, 896, 896, false, 4},
        {"0.5b.logits.q8_0", matvec_q8_0_q8_none, 32, 34, 32, 151936, 896, false, 4},
    };
    const char* only = getenv("MVL_ONLY");  // a substring of the shape names to run
    for (const Shape& s : shapes) {
        if (only && !strstr(s.name, only)) continue;
        Run r;
        r.s = &s;
        r.mbytes = (size_t)s.K / s.qk * s.bytes * s.rows;
        size_t mb = r.mbytes * (s.swiglu ? 2 : 1);
        int copies = (int)((600ull << 20) / mb) + 1;
        if (copies > 64) copies = 64;
        size_t nblocks = r.mbytes / s.bytes;
        const int d_at = s.bytes == 210 ? 208 : 0, n16 = s.bytes == 144 ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            for (int m = 0; m < (s.swiglu ? 2 : 1); m++) {
                u8* w; CK(cudaMalloc(&w, r.mbytes));
                fill<<<1024, 256>>>(w, r.mbytes, 17 + c + 1000 * m);
                fix_scales<<<1024, 256>>>(w, nblocks, s.bytes, d_at, n16);
                (m ? r.w2 : r.w).push_back(w);
            }
        }
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.occ, (const void*)s.fn, MATVEC_THREADS, 0));
        const int units = s.K / s.unit, L0 = default_lanes(units), ks0 = default_ks(s.rows, units, L0, r.occ * g_sms);
        const int reps = mb > (100u << 20) ? 40 : 300;
        set_lanes(0);
        std::vector<float> ref = output(r, L0, ks0);
        double amax = 0.0;
        size_t nan = 0;
        for (float f : ref) { nan += !std::isfinite(f); if (std::isfinite(f)) amax = std::max(amax, (double)fabsf(f)); }
        const double tb = time_us(r, L0, ks0, reps), tr = time_us(r, 0, 0, reps);
        printf("%-19s %6.1f MB  rows %d K %d units %d  occ %d  main: L %d ks %d  (non-finite outputs %zu, max |y| %.3g)\n", s.name, mb / 1e6, s.rows,
               s.K, units, r.occ, L0, ks0, nan, amax);
        printf("   %-12s %8.2f us %6.0f GB/s\n", "main", tb, mb / (tb * 1e3));
        printf("   %-12s %8.2f us %6.0f GB/s  (%.3f of main)\n", "read4", tr, mb / (tr * 1e3), tr / tb);
        for (int L = 32; L >= s.min_lanes; L /= 2) {
            if (L > L0) continue;
            for (int ks : {1, 2, 4, 8}) {
                if (L == L0 && ks == ks0) continue;
                if (ks > 1 && units <= L * (ks - 1)) continue;  // a warp of the split with no units
                set_lanes(L == L0 ? 0 : L);
                std::vector<float> o = output(r, L, ks);
                double md = 0.0;
                size_t bad = 0;
                for (size_t j = 0; j < o.size(); j++) {
                    if (!std::isfinite(o[j]) != !std::isfinite(ref[j])) bad++;
                    else if (std::isfinite(o[j])) md = std::max(md, (double)fabsf(o[j] - ref[j]));
                }
                const double t = time_us(r, L, ks, reps);
                int per = (8 / ks) * 4 * (32 / L), grid = (s.rows + per - 1) / per;
                printf("   L%-2d ks%d      %8.2f us %6.0f GB/s  (%.3f of main)  grid %d  passes %d  max|diff| %.2g of max|y|%s\n", L, ks, t,
                       mb / (t * 1e3), t / tb, grid, (units + L * ks - 1) / (L * ks), amax > 0 ? md / amax : md, bad ? "  FINITENESS DIFFERS" : "");
            }
        }
        set_lanes(0);
        fflush(stdout);
        for (u8* w : r.w) cudaFree(w);
        for (u8* w : r.w2) cudaFree(w);
    }
    return 0;
}
