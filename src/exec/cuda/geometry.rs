//! Launch geometry: how many CTAs each kernel gets, sized from the shapes and from the
//! device's properties (SM count, resident CTAs per SM), never from one card's constants.
//! Pure functions, so the policy is tested without a GPU.

use crate::codegen::catalogue::{
    ATT_BK, ATT_KEY_THREADS, ATT_MMA_BK, ATT_MMA_HEAD_BYTES, ATT_MMA_MIN_CTAS, ATT_MMA_PAD,
    ATT_MMA_THREADS, ATT_PAD, ATT_ROWS_PER_THREAD, ATT_SPLIT_MAX_NC, ATT_THREADS, MATVEC_THREADS,
    MMQ_BM, MMQ_BN, PREP_MERGE_W, PREP_THREADS, attn_split_smem, matvec_lanes,
};
use crate::codegen::{Kv, WType};
use crate::error::{Error, Result};

/// CTAs (256 threads, grid-stride loops) for an elementwise kernel over `count` elements.
pub(super) fn elt_grid(count: usize) -> u32 {
    (count.div_ceil(256) as u32).min(4096)
}

/// CTAs of the decode input preparation over a row of `k`: one warp per 32-block,
/// PREP_THREADS a CTA (kernels/quantize.cu, prep; its deferred merge takes PREP_THREADS
/// columns a CTA).
pub(super) fn prep_grid(k: usize) -> u32 {
    (k / 32).div_ceil((PREP_THREADS / 32) as usize) as u32
}

/// Whether `prep`'s deferred merge (kernels/quantize.cu, prep_merge) holds decode attention
/// of `head_dim` over `n_split` splits a KV head: each CTA's PREP_THREADS output columns
/// span at most a warp per head, and those heads' merge weights fit PREP_MERGE_W floats.
pub(super) fn prep_merge_fits(head_dim: usize, n_split: usize) -> bool {
    let t = PREP_THREADS as usize;
    if head_dim == 0 {
        return false;
    }
    let span = t.div_ceil(head_dim) + usize::from(!t.is_multiple_of(head_dim));
    span <= t / 32 && span * n_split <= PREP_MERGE_W as usize
}

/// CTAs of the fused Q/K/V kernel: one warp per RoPE pair of output rows.
pub(super) fn qkv_grid(n_head: usize, n_head_kv: usize, head_dim: usize) -> u32 {
    let pairs = (n_head + 2 * n_head_kv) * head_dim / 2;
    pairs.div_ceil((MATVEC_THREADS / 32) as usize) as u32
}

/// CTAs of the tiled prefill GEMM: (weight-row tiles, token tiles) (kernels/mmq.cu).
pub(super) fn mmq_grid(rows: usize, t: usize) -> (u32, u32) {
    (
        rows.div_ceil(MMQ_BM as usize) as u32,
        t.div_ceil(MMQ_BN as usize) as u32,
    )
}

/// CTAs of the prefill GEMM over a gate/up pair of `rows` rows each: a CTA's tile holds
/// MMQ_BM / 2 rows of each matrix (kernels/mmq.cu, `mmq_pair_*`), so the pair fills one grid of
/// twice as many CTAs as either matrix alone.
pub(super) fn mmq_pair_grid(rows: usize, t: usize) -> (u32, u32) {
    (
        rows.div_ceil(MMQ_BM as usize / 2) as u32,
        t.div_ceil(MMQ_BN as usize) as u32,
    )
}

/// CTAs of the CUDA-core prefill matmul: 8 rows (warps) × 8 tokens each (kernels/matmul.cu).
pub(super) fn matmul_grid(rows: usize, t: usize) -> (u32, u32) {
    (rows.div_ceil(8) as u32, t.div_ceil(8) as u32)
}

/// (CTAs, K split) for a decode matvec of `rows` rows of `k` inputs of weight type `w`,
/// given `slots` resident CTAs per wave. Mirrors kernels/matvec.cu: lanes per row = the
/// smallest power of two covering the row's units, rows per lane group by type
/// (RowsPerWarp); the K split grows (up to the 8 warps of a CTA) until about 2048 warps are
/// busy, as long as every warp keeps half a pass of units. Then, when the grid spans
/// several waves, a larger split is taken if it fills the waves clearly better (a last,
/// partly filled wave leaves SMs idle while it drains), as long as every warp gets units.
pub(super) fn matvec_grid(rows: usize, w: WType, k: usize, slots: usize) -> (u32, i32) {
    let units = k / w.unit();
    let lanes = matvec_lanes(units);
    let per_set = 4 * (32 / lanes);
    let sets = rows.div_ceil(per_set);
    let mut ks = 1;
    while ks < 8 && sets * ks < 2048 && units >= lanes * ks {
        ks *= 2;
    }
    let warps = (MATVEC_THREADS / 32) as usize;
    let grid = |ks: usize| rows.div_ceil(warps / ks * per_set);
    let fill = |ks: usize| {
        let g = grid(ks);
        g as f64 / (g.div_ceil(slots.max(1)) * slots.max(1)) as f64
    };
    if grid(ks) > slots {
        let mut best = ks;
        for c in [ks * 2, ks * 4, ks * 8] {
            if c <= warps && units > lanes * (c - 1) && fill(c) > fill(best) + 0.1 {
                best = c;
            }
        }
        ks = best;
    }
    (grid(ks) as u32, ks as i32)
}

/// A prefill attention launch (kernels/attention.cu, attention_impl): threads per CTA (n/4
/// query rows each), the grid, and the dynamic shared memory with its layout (float
/// offsets of the K/P and V tiles; Q at 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AttnTile {
    pub threads: u32,
    pub grid: (u32, u32),
    pub kp_at: u32,
    pub v_at: u32,
    pub smem: u32,
}

/// The prefill attention tiles for `t` query rows, `group` query heads per KV head: the
/// largest CTA (256, 128 or 64 threads: 64, 32 or 16 (row, head) pairs) whose grid still
/// covers the `n_sm` SMs and whose shared memory fits `max_smem`, else the smallest that
/// fits (short prompts). Shared memory per CTA: Q [rows][hd+4], K [64][hd+4] (P [rows][68]
/// reuses it), V [64][hd] in f32 — 98 KB for 64 rows at head dim 128.
pub(super) fn attention_tile(
    t: usize,
    group: usize,
    n_kv: usize,
    hd: usize,
    n_sm: u32,
    max_smem: u32,
) -> Result<AttnTile> {
    let (bk, pad) = (ATT_BK as usize, ATT_PAD as usize);
    let layout = |threads: u32| {
        let rows = (threads / ATT_KEY_THREADS * ATT_ROWS_PER_THREAD) as usize;
        let kp_at = rows * (hd + pad);
        let v_at = kp_at + (bk * (hd + pad)).max(rows * (bk + pad));
        let smem = (v_at + bk * hd) * 4;
        let grid = ((t * group).div_ceil(rows) as u32, n_kv as u32);
        AttnTile {
            threads,
            grid,
            kp_at: kp_at as u32,
            v_at: v_at as u32,
            smem: smem as u32,
        }
    };
    let fitting = [ATT_THREADS, ATT_THREADS / 2, ATT_THREADS / 4]
        .into_iter()
        .map(layout)
        .filter(|a| a.smem <= max_smem);
    filling_or_smallest(fitting, |a| a.grid, n_sm)
        .ok_or_else(|| smem_error(layout(ATT_THREADS / 4).smem, hd, max_smem))
}

/// Of candidate CTA shapes, largest first and all fitting the device: the first whose grid
/// covers the `n_sm` SMs, else the smallest (a short prompt); None when none fit.
fn filling_or_smallest<T: Copy>(
    fitting: impl Iterator<Item = T>,
    grid: impl Fn(&T) -> (u32, u32),
    n_sm: u32,
) -> Option<T> {
    let mut last = None;
    for a in fitting {
        let g = grid(&a);
        if g.0 * g.1 >= n_sm {
            return Some(a);
        }
        last = Some(a);
    }
    last
}

fn smem_error(need: u32, hd: usize, max_smem: u32) -> Error {
    Error::invalid(format!(
        "prefill attention needs {need} bytes of shared memory per CTA at head dim {hd}; this GPU allows {max_smem}"
    ))
}

/// A prefill attention launch on tensor cores (kernels/attn_prefill_mma.cuh): threads per
/// CTA (16 (row, head) pairs per warp), the grid, K/V stages, dynamic shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AttnMmaTile {
    pub threads: u32,
    pub grid: (u32, u32),
    pub stages: u32,
    pub smem: u32,
}

/// The tensor-core prefill attention tiles for `t` query rows, `group` query heads per KV
/// head. For 4, 2 or 1 warps, the K/V stages (2: the next tile loads during the math, or 1)
/// that keep the most warps resident on an SM of `smem_per_sm` bytes (each CTA also costs
/// the 1 KB the driver reserves; at most ATT_MMA_MIN_CTAS, the register bound), two on a
/// tie; of those that fit `max_smem`, the largest whose grid still covers the `n_sm` SMs,
/// else the smallest (short prompts). Shared memory: ATT_MMA_HEAD_BYTES, Q hi and lo
/// [16·warps][hd+8] f16, and per stage K and V [ATT_MMA_BK][hd+8] f16 — 68.5 KB for 4
/// warps, 1 stage, head dim 128 (three per H200 SM: 12 warps), 102.5 KB with 2 stages (two).
pub(super) fn attention_mma_tile(
    t: usize,
    group: usize,
    n_kv: usize,
    hd: usize,
    n_sm: u32,
    max_smem: u32,
    smem_per_sm: u32,
) -> Result<AttnMmaTile> {
    let row_bytes = (hd + ATT_MMA_PAD as usize) * 2;
    let smem = |rows: usize, stages: usize| {
        (ATT_MMA_HEAD_BYTES as usize + (2 * rows + stages * 2 * ATT_MMA_BK as usize) * row_bytes)
            as u32
    };
    let resident = |bytes: u32| (smem_per_sm / (bytes + 1024)).min(ATT_MMA_MIN_CTAS);
    let fitting = [ATT_MMA_THREADS, ATT_MMA_THREADS / 2, ATT_MMA_THREADS / 4]
        .into_iter()
        .filter_map(|threads| {
            let rows = threads as usize / 2;
            let stages = [2, 1]
                .into_iter()
                .filter(|&s| smem(rows, s) <= max_smem)
                .max_by_key(|&s| (resident(smem(rows, s)), s))?;
            Some(AttnMmaTile {
                threads,
                grid: ((t * group).div_ceil(rows) as u32, n_kv as u32),
                stages: stages as u32,
                smem: smem(rows, stages),
            })
        });
    filling_or_smallest(fitting, |a| a.grid, n_sm)
        .ok_or_else(|| smem_error(smem(16, 1), hd, max_smem))
}

/// The decode attention launch (kernels/attention.cu, attention_split_impl): CTAs per KV
/// head, positions staged per step, the staged row stride, the bytes of a stage and the
/// dynamic shared memory (SplitHead, then the stage area: two stages, which the slice sums
/// and the merge weights reuse), and the dynamic shared memory a launch asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SplitGeom {
    pub n_split: u32,
    pub nc: u32,
    pub row_bytes: u32,
    pub stage_bytes: u32,
    pub smem: u32,
    /// `smem` raised past half an SM's shared memory (within the per-CTA limit), so that
    /// only one CTA fits an SM (`launch_smem`).
    pub spread_smem: u32,
}

impl SplitGeom {
    /// The dynamic shared memory a launch of `ctas` CTAs asks for on `n_sm` SMs. A grid of
    /// one wave asks for `spread_smem`: launched programmatically while the kernel before
    /// still drains, its CTAs otherwise packed two to an SM on about half the SMs (the
    /// launch timeline of an H100: 132 CTAs on 66-72 SMs), so half the SMs' load units
    /// streamed the cache; spread, 7B tg128 @ d8192 +7.2%, 1.5B +7.1%
    /// (evidence/h100/att-spread/). A larger grid (a batched step's) keeps `smem`, so it
    /// does not become two waves.
    pub fn launch_smem(&self, ctas: u32, n_sm: u32) -> u32 {
        if ctas <= n_sm {
            self.spread_smem
        } else {
            self.smem
        }
    }
}

/// Decode attention geometry: ceil(SMs / KV heads) splits per KV head, so one CTA per SM
/// streams the cache at depth (each split takes an equal share of the positions at run
/// time), with two stages of 64 positions in flight when they fit the shared memory, else
/// of 32. `max_smem` is the per-CTA limit, `smem_per_sm` an SM's shared memory.
pub(super) fn attention_split_geom(
    n_sm: u32,
    n_kv: usize,
    group: usize,
    hd: usize,
    kv: Kv,
    max_smem: u32,
    smem_per_sm: u32,
) -> Result<SplitGeom> {
    let n_split = (n_sm as usize).div_ceil(n_kv).max(1);
    for nc in [ATT_SPLIT_MAX_NC as usize, 32] {
        let (row_bytes, stage, smem) =
            attn_split_smem(ATT_THREADS as usize, nc, hd, kv, group, n_split);
        if smem <= max_smem as usize {
            return Ok(SplitGeom {
                n_split: n_split as u32,
                nc: nc as u32,
                row_bytes: row_bytes as u32,
                stage_bytes: stage as u32,
                smem: smem as u32,
                spread_smem: (smem as u32).max(smem_per_sm / 2 + 1).min(max_smem),
            });
        }
    }
    Err(Error::invalid(format!(
        "decode attention needs more shared memory per CTA than this GPU allows ({max_smem} bytes) at head dim {hd}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::catalogue::ATT_SPLIT_HEAD_BYTES;

    #[test]
    fn matvec_grid_covers_every_row_and_splits_short_matrices() {
        // 7B logits: 152,064 rows of 3,584 Q6_K: many rows, no split needed.
        let (g, ks) = matvec_grid(152_064, WType::Q6_K, 3584, 132 * 4);
        assert_eq!(ks, 1);
        assert!(g as usize * 8 * 4 >= 152_064);
        // 0.5B ffn_down: 896 rows of 4,864 Q6_K: few, long rows: K split over the warps.
        let (g, ks) = matvec_grid(896, WType::Q6_K, 4864, 132 * 4);
        assert_eq!(ks, 8);
        assert!(g as usize * (8 / ks as usize) * 4 >= 896);
        // 0.5B attn_k: 128 rows of 896 Q5_0: too short a row to split.
        assert_eq!(matvec_grid(128, WType::Q5_0, 896, 132 * 4), (4, 1));
        // The split never exceeds the 8 warps of a CTA, whatever the device.
        for slots in [1, 128 * 4, 132 * 4] {
            for rows in [1, 7, 896, 4864, 18_944] {
                let (_, ks) = matvec_grid(rows, WType::Q4_K, 4864, slots);
                assert!((1..=8).contains(&ks) && (ks as u32).is_power_of_two());
            }
        }
    }

    #[test]
    fn prefill_attention_tiles_fit_the_device_and_fill_it() {
        // H200 (132 SMs, 227 KB), 7B (G = 7, 4 KV heads, hd 128), a 512-row chunk: the
        // largest tile, 56 × 4 = 224 CTAs of 98 KB (two per SM).
        let h200 = attention_tile(512, 7, 4, 128, 132, 232_448).unwrap();
        assert_eq!(h200.threads, 256);
        assert_eq!(h200.grid, (56, 4));
        assert_eq!(h200.smem, 100_352);
        assert_eq!(h200.kp_at, 64 * 132);
        assert_eq!(h200.v_at, 2 * 64 * 132);
        // 1.5B (G = 6, 2 KV heads): 64-row tiles give 96 CTAs < 132 SMs: 32-row tiles.
        let a = attention_tile(512, 6, 2, 128, 132, 232_448).unwrap();
        assert_eq!((a.threads, a.grid), (128, (96, 2)));
        // RTX 4090 (128 SMs, 99 KB per CTA): the 98 KB tile still fits.
        let b = attention_tile(512, 7, 4, 128, 128, 101_376).unwrap();
        assert_eq!(b.threads, 256);
        // A GPU with less: the 32-row tile (82 KB).
        let c = attention_tile(512, 7, 4, 128, 128, 90_000).unwrap();
        assert_eq!(c.threads, 128);
        assert!(c.smem <= 90_000);
        // A short prompt: the smallest tile, every row covered.
        let d = attention_tile(7, 7, 2, 64, 132, 232_448).unwrap();
        assert_eq!(d.threads, 64);
        assert!(d.grid.0 as usize * 16 >= 49);
        // Too little shared memory is an error that says so.
        let e = attention_tile(7, 7, 2, 128, 132, 48 * 1024).unwrap_err();
        assert!(e.to_string().contains("shared memory"), "{e}");
    }

    #[test]
    fn tensor_core_attention_tiles_fit_the_device_and_fill_it() {
        // H200 (132 SMs, 227 KB per CTA, 228 KB per SM), 7B (G = 7, 4 KV heads, hd 128),
        // 512 rows: 4 warps, 56 × 4 = 224 CTAs; one stage (68.5 KB: three CTAs per SM, 12
        // warps) over two (102.5 KB: two CTAs, 8 warps).
        let h200 = attention_mma_tile(512, 7, 4, 128, 132, 232_448, 233_472).unwrap();
        assert_eq!((h200.threads, h200.grid, h200.stages), (128, (56, 4), 1));
        assert_eq!(h200.smem, 512 + (128 + 128) * 272);
        // 1.5B (G = 6, 2 KV heads): 64-row tiles give 96 CTAs < 132 SMs: 32-row tiles; two
        // stages (85.5 KB) fit twice per SM, one stage (51.5 KB) three times: one stage.
        let a = attention_mma_tile(512, 6, 2, 128, 132, 232_448, 233_472).unwrap();
        assert_eq!((a.threads, a.grid, a.stages), (64, (96, 2), 1));
        // RTX 4090 (128 SMs, 99 KB per CTA, 100 KB per SM): two stages of 4 warps do not
        // fit a CTA; one does (one CTA per SM).
        let b = attention_mma_tile(8192, 7, 4, 128, 128, 101_376, 102_400).unwrap();
        assert_eq!((b.threads, b.stages), (128, 1));
        assert!(b.smem <= 101_376);
        // Head dim 64 (0.5B) on the 4090: two stages (54.5 KB) fit once, one stage (36.5 KB)
        // twice: one stage. On an H200 three CTAs fit either way: two stages.
        let c = attention_mma_tile(4096, 7, 2, 64, 128, 101_376, 102_400).unwrap();
        assert_eq!((c.threads, c.stages, c.smem), (128, 1, 512 + 256 * 144));
        let c = attention_mma_tile(4096, 7, 2, 64, 132, 232_448, 233_472).unwrap();
        assert_eq!((c.threads, c.stages, c.smem), (128, 2, 512 + 384 * 144));
        // A short prompt: the smallest tile, every row covered.
        let d = attention_mma_tile(7, 7, 2, 64, 132, 232_448, 233_472).unwrap();
        assert_eq!(d.threads, 32);
        assert!(d.grid.0 as usize * 16 >= 49);
        // Too little shared memory is an error that says so.
        let e = attention_mma_tile(7, 7, 2, 128, 132, 16 * 1024, 16 * 1024).unwrap_err();
        assert!(e.to_string().contains("shared memory"), "{e}");
    }

    #[test]
    fn decode_attention_splits_follow_the_sm_count() {
        // H200, 7B: 33 splits × 4 KV heads ≈ one CTA per SM; f16 stages of 64 positions.
        let g = attention_split_geom(132, 4, 7, 128, Kv::F16, 232_448, 233_472).unwrap();
        assert_eq!((g.n_split, g.nc, g.row_bytes), (33, 64, 272));
        assert_eq!(g.stage_bytes, 2 * 64 * 272);
        assert_eq!(g.smem, ATT_SPLIT_HEAD_BYTES + 4 * 64 * 272);
        // A launch of one wave asks for over half the SM's 228 KB, so two CTAs never share
        // an SM; a larger grid asks for the stage area alone.
        assert_eq!(g.launch_smem(132, 132), 233_472 / 2 + 1);
        assert_eq!(g.launch_smem(4 * 5 * 8, 132), g.smem);
        // RTX 4090 with an f32 cache: 64-position stages (135 KB) do not fit: 32.
        let h = attention_split_geom(128, 2, 6, 128, Kv::F32, 101_376, 102_400).unwrap();
        assert_eq!((h.n_split, h.nc), (64, 32));
        assert!(h.smem <= 101_376);
        // There the stage area alone takes over half of the SM's 100 KB.
        assert!(h.smem > 102_400 / 2);
        assert_eq!(h.spread_smem, h.smem);
        // So does an f16 one at head dim 128 (two 64-position stages of K and V, 70 KB);
        // at head dim 64 (37 KB) the launch asks for 50 KB + 1.
        let h = attention_split_geom(128, 2, 6, 128, Kv::F16, 101_376, 102_400).unwrap();
        assert_eq!((h.nc, h.spread_smem), (64, h.smem));
        let h = attention_split_geom(128, 2, 6, 64, Kv::F16, 101_376, 102_400).unwrap();
        assert_eq!((h.nc, h.spread_smem), (64, 51_201));
        assert!(h.smem < h.spread_smem);
        // A per-CTA limit below half the SM (no such GPU known) caps the request.
        let c = attention_split_geom(132, 4, 7, 128, Kv::F16, 100_000, 233_472).unwrap();
        assert_eq!(c.spread_smem, 100_000);
        // The stage area also holds the slice sums (256 threads × G float4s) and the merge
        // weights (G × n_split floats).
        let t = attention_split_geom(132, 1, 8, 16, Kv::F16, 232_448, 233_472).unwrap();
        assert!(t.smem - ATT_SPLIT_HEAD_BYTES >= 256 * 8 * 16);
        assert!(t.smem - ATT_SPLIT_HEAD_BYTES >= 8 * t.n_split * 4);
    }

    #[test]
    fn tiled_grids_cover_their_shapes() {
        assert_eq!(mmq_grid(896, 513), (14, 5));
        assert_eq!(mmq_pair_grid(4864, 512), (152, 4));
        assert_eq!(mmq_pair_grid(18944, 129), (592, 2));
        assert_eq!(matmul_grid(9, 1), (2, 1));
        assert_eq!(qkv_grid(14, 2, 64), 72);
        assert_eq!(prep_grid(896), 4);
        assert_eq!(elt_grid(10), 1);
        assert_eq!(elt_grid(1 << 30), 4096);
    }

    #[test]
    fn deferred_merge_fits_the_qwen_heads_on_large_gpus_only_within_its_weights() {
        // Qwen2.5 head dims 64 (0.5B: 4 heads a CTA) and 128 (1.5B, 7B: 2), with the split
        // counts of 132- to 170-SM cards (ceil(SMs / KV heads)).
        assert!(prep_merge_fits(64, 66) && prep_merge_fits(128, 33) && prep_merge_fits(128, 85));
        // Head dim 96 spans up to 4 heads in 256 columns (not aligned to them).
        assert!(prep_merge_fits(96, 66));
        // More heads than warps, or more weights than PREP_MERGE_W floats: the merging CTA.
        assert!(!prep_merge_fits(16, 8));
        assert!(!prep_merge_fits(64, 513));
        assert!(!prep_merge_fits(0, 1));
    }
}
