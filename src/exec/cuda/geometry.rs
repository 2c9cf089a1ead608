//! Launch geometry: how many CTAs each kernel gets, sized from the shapes and from the
//! device's properties (SM count, resident CTAs per SM), never from one card's constants.
//! Pure functions, so the policy is tested without a GPU.

use crate::codegen::WType;
use crate::codegen::catalogue::{MATVEC_THREADS, MMQ_BM, MMQ_BN, matvec_lanes};

/// CTAs (256 threads, grid-stride loops) for an elementwise kernel over `count` elements.
pub(super) fn elt_grid(count: usize) -> u32 {
    (count.div_ceil(256) as u32).min(4096)
}

/// CTAs of the decode input preparation over a row of `k`: one warp per 32-block, 8 warps
/// a CTA (kernels/quantize.cu, prep).
pub(super) fn prep_grid(k: usize) -> u32 {
    (k / 32).div_ceil(8) as u32
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tiled_grids_cover_their_shapes() {
        assert_eq!(mmq_grid(896, 513), (14, 5));
        assert_eq!(matmul_grid(9, 1), (2, 1));
        assert_eq!(qkv_grid(14, 2, 64), 72);
        assert_eq!(prep_grid(896), 4);
        assert_eq!(elt_grid(10), 1);
        assert_eq!(elt_grid(1 << 30), 4096);
    }
}
