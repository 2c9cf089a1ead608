//! How a persistent program is sized, as pure functions of the model's shapes and the
//! device's limits: the grid (`persistent_ctas`), the matvec K split and tiles
//! (`matvec_split`), the attention splits and their shared memory (`att_splits`,
//! `attn_geom`), the staging of matvec inputs (`staging`) and the CTAs' share of an
//! instruction's work items (`cta_items`).

use crate::codegen::catalogue::{
    ATT_SPLIT_MAX_NC, MATVEC_THREADS, PERSIST_MIN_CTAS, PERSIST_THREADS, attn_split_smem,
    matvec_lanes, matvec_tile_rows,
};
use crate::codegen::{Act, Kv, WType};
use crate::error::{Error, Result};

/// What a program is sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramOptions {
    /// CTAs of the launch (all resident at once: `persistent_ctas`).
    pub ctas: usize,
    /// Positions of the KV cache: attention splits beyond its tiles never hold positions.
    pub n_ctx: usize,
    /// At most this many attention splits per KV head (None: enough to give every CTA an
    /// item at full context).
    pub max_att_splits: Option<usize>,
    /// The device's shared memory per SM, and the most dynamic shared memory a CTA may
    /// opt into: the attention stages 64 positions per step where that keeps
    /// PERSIST_MIN_CTAS CTAs per SM (`att_smem_budget`), else 32; where neither does, the
    /// larger that fits one CTA per SM.
    pub smem_per_sm: usize,
    pub max_smem: usize,
}

/// Static shared memory of the persistent kernel (kernels/persistent.cu, persistent_impl):
/// the matvec K-split partials (MATVEC_PART_FLOATS floats), 32 doubles and 64 words of
/// reduction scratch.
pub const PERSIST_STATIC_SMEM: usize = (MATVEC_THREADS as usize / 32 * 2 * 4 * 32) * 4 + 512;

/// Dynamic shared memory per CTA the attention may take on a GPU with `smem_per_sm` bytes
/// of shared memory per SM and `max_smem` per CTA: what keeps PERSIST_MIN_CTAS CTAs per SM
/// resident, less each CTA's static shared memory and the 1 KiB the driver reserves per
/// CTA. (An H200: 233,472 per SM, so 107,008: an f16 cache stages 64 positions, f32 32. An
/// RTX 4090: 102,400, so 41,472: head dim 128 with an f32 cache leaves one CTA per SM.)
pub fn att_smem_budget(smem_per_sm: usize, max_smem: usize) -> usize {
    (smem_per_sm / PERSIST_MIN_CTAS as usize)
        .saturating_sub(1024 + PERSIST_STATIC_SMEM)
        .min(max_smem)
}

/// Shared memory per SM of an H200 and its opt-in limit per CTA, for programs listed
/// without a GPU (`graphrun dump`).
pub const H200_SMEM_PER_SM: usize = 233_472;
pub const H200_MAX_SMEM: usize = 232_448;

/// The decode attention's split geometry (kernels/attn_decode.cuh; the same as the
/// multi-kernel attention_split's for the same `n_split` and `nc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnGeom {
    /// Splits per KV head; positions staged per step; staged row stride and stage bytes;
    /// dynamic shared memory of an item.
    pub n_split: usize,
    pub nc: usize,
    pub row_bytes: usize,
    pub stage_bytes: usize,
    pub smem: usize,
}

/// The attention geometry: `n_split` splits per KV head; stages of 64 positions if they fit
/// `att_smem_budget`, else 32; if neither does, 64 or 32 within `max_smem` (one CTA per
/// SM); an error when nothing fits.
pub fn attn_geom(
    n_split: usize,
    group: usize,
    head_dim: usize,
    kv: Kv,
    smem_per_sm: usize,
    max_smem: usize,
) -> Result<AttnGeom> {
    for limit in [att_smem_budget(smem_per_sm, max_smem), max_smem] {
        for nc in [ATT_SPLIT_MAX_NC as usize, 32] {
            let (row_bytes, stage_bytes, smem) =
                attn_split_smem(PERSIST_THREADS as usize, nc, head_dim, kv, group, n_split);
            if smem <= limit {
                return Ok(AttnGeom {
                    n_split,
                    nc,
                    row_bytes,
                    stage_bytes,
                    smem,
                });
            }
        }
    }
    Err(Error::invalid(format!(
        "the persistent kernel's decode attention needs {} bytes of shared memory per CTA (head dim {head_dim}, {} cache); this GPU allows {max_smem}",
        attn_split_smem(PERSIST_THREADS as usize, 32, head_dim, kv, group, n_split).2,
        kv.name()
    )))
}

/// Byte offsets of a matvec input staged in a CTA's dynamic shared memory (16-byte
/// aligned): f32 (f32 semantics with a norm prologue), Q8_0 values and scales (legacy
/// weights under q8), Q8_K values, scales and block sums (k-quants under q8). None: not
/// staged (f32 without a norm reads the input row itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Staging {
    pub xf: Option<usize>,
    pub q0: Option<usize>,
    pub d0: Option<usize>,
    pub qk: Option<usize>,
    pub dk: Option<usize>,
    pub bs: Option<usize>,
    pub bytes: usize,
}

/// The staging of a K-wide input for weights of `types` under `act` (as the multi-kernel
/// path's prep kernel prepares it, src/exec/cuda/groups.rs).
pub fn staging(k: usize, act: Act, norm: bool, types: &[WType]) -> Staging {
    let q8 = act == Act::Q8 && types.iter().all(|t| t.quantized());
    let legacy = q8 && types.iter().any(|t| !t.k_quant());
    let kq = q8 && types.iter().any(|t| t.k_quant());
    let mut at = 0;
    let mut take = |yes: bool, n: usize| {
        yes.then(|| {
            let o = at;
            at = (at + n).next_multiple_of(16);
            o
        })
    };
    let (q0, d0) = (take(legacy, k), take(legacy, k / 32 * 4));
    let (qk, dk, bs) = (take(kq, k), take(kq, k / 256 * 4), take(kq, k / 16 * 4));
    let xf = take(!q8 && norm, 4 * k);
    Staging {
        xf,
        q0,
        d0,
        qk,
        dk,
        bs,
        bytes: at,
    }
}

/// CTAs of the persistent launch. Every CTA must be resident at once (the kernel's
/// deadlock freedom rests on it, kernels/persistent.cu): `per_sm` is the occupancy of the
/// kernel (registers, shared memory), optionally capped, on each of `n_sm` SMs.
pub fn persistent_ctas(per_sm: usize, n_sm: usize, cap_per_sm: Option<usize>) -> Result<usize> {
    let per_sm = per_sm.min(cap_per_sm.unwrap_or(usize::MAX));
    if per_sm == 0 || n_sm == 0 {
        return Err(Error::invalid(format!(
            "the persistent decode kernel does not fit on this GPU ({per_sm} resident CTAs per SM on {n_sm} SMs)"
        )));
    }
    Ok(per_sm * n_sm)
}

/// The K split and tile rows of a persistent matvec of `rows` × `k` weights of type `w`
/// over `ctas` CTAs: the split (1, 2, 4, 8 warps per row set, each warp with units to
/// work on) that minimises the busiest CTA's time — its tiles × the lane passes of a
/// tile — taking the smaller split on ties.
pub fn matvec_split(rows: usize, w: WType, k: usize, ctas: usize) -> (usize, usize) {
    let units = k / w.unit();
    let lanes = matvec_lanes(units);
    let mut best = (usize::MAX, 1, matvec_tile_rows(w, k, 1));
    for ks in [1usize, 2, 4, 8] {
        if ks > 1 && units <= lanes * (ks - 1) {
            break;
        }
        let tr = matvec_tile_rows(w, k, ks);
        let per_cta = rows.div_ceil(tr).div_ceil(ctas.max(1));
        // A warp's rows of a tile × its passes over the row's units.
        let cost = per_cta * (tr * ks / 8) * units.div_ceil(ks * lanes);
        if cost < best.0 {
            best = (cost, ks, tr);
        }
    }
    (best.1, best.2)
}

/// Attention splits per KV head: enough that every CTA gets an item when the context is
/// long, no more than the context has 32-position stages, at most `max`.
pub fn att_splits(ctas: usize, n_head_kv: usize, n_ctx: usize, max: Option<usize>) -> usize {
    let cover = n_ctx.div_ceil(32).max(1);
    (ctas / n_head_kv.max(1))
        .clamp(1, cover)
        .min(max.unwrap_or(usize::MAX))
        .max(1)
}

/// The items of `items` CTA `cta` of `ctas` takes.
pub fn cta_items(items: usize, cta: usize, ctas: usize) -> std::ops::Range<usize> {
    items * cta / ctas..items * (cta + 1) / ctas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_resident_ctas_and_refuses_zero() {
        // H200: 132 SMs; RTX 4090: 128 SMs; both at two CTAs per SM.
        assert_eq!(persistent_ctas(2, 132, None).unwrap(), 264);
        assert_eq!(persistent_ctas(2, 128, None).unwrap(), 256);
        assert_eq!(persistent_ctas(3, 128, Some(1)).unwrap(), 128);
        let e = persistent_ctas(0, 132, None).unwrap_err().to_string();
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn matvec_split_keeps_every_warp_busy_and_covers_the_rows() {
        // 7B logits: many rows, no split. 7B attn_out (3,584 rows of 56 Q4_K units): a
        // split of 2 fills 224 of 264 CTAs instead of 112.
        assert_eq!(matvec_split(152_064, WType::Q6_K, 3584, 264), (1, 32));
        assert_eq!(matvec_split(3584, WType::Q4_K, 3584, 264), (2, 16));
        // 0.5B attn_out: 28 Q5_0 units a row fill one lane pass: no split can help.
        assert_eq!(matvec_split(896, WType::Q5_0, 896, 264), (1, 32));
        for (rows, w, k) in [
            (1, WType::Q8_0, 256),
            (128, WType::Q5_0, 896),
            (18_944, WType::Q4_K, 3584),
            (3584, WType::Q6_K, 18_944),
            (151_936, WType::Q8_0, 896),
        ] {
            for ctas in [1, 7, 128, 264, 528] {
                let (ks, tr) = matvec_split(rows, w, k, ctas);
                assert!([1, 2, 4, 8].contains(&ks));
                assert_eq!(tr, matvec_tile_rows(w, k, ks));
                let units = k / w.unit();
                assert!(ks == 1 || units > matvec_lanes(units) * (ks - 1));
            }
        }
    }

    #[test]
    fn staging_is_aligned_and_sized_like_prep() {
        let s = staging(18_944, Act::Q8, false, &[WType::Q6_K]);
        assert_eq!((s.q0, s.xf), (None, None));
        assert_eq!(s.qk, Some(0));
        assert_eq!(s.dk, Some(18_944));
        assert_eq!(s.bs, Some(18_944 + 304)); // scales rounded up to 16 bytes
        assert_eq!(s.bytes, 18_944 + 304 + 4736);
        let s = staging(896, Act::Q8, true, &[WType::Q5_0, WType::Q8_0]);
        assert_eq!((s.q0, s.d0, s.qk), (Some(0), Some(896), None));
        // f32 semantics: only a norm prologue needs the row staged.
        assert_eq!(staging(3584, Act::F32, false, &[WType::Q4_K]).bytes, 0);
        assert_eq!(staging(3584, Act::F32, true, &[WType::Q4_K]).xf, Some(0));
        let s = staging(4864, Act::Q8, true, &[WType::Q4_K, WType::Q5_0]);
        for o in [s.q0, s.d0, s.qk, s.dk, s.bs].into_iter().flatten() {
            assert_eq!(o % 16, 0);
        }
    }

    #[test]
    fn attention_splits_fill_the_ctas_within_the_context() {
        assert_eq!(att_splits(264, 4, 32_768, None), 66);
        assert_eq!(att_splits(264, 2, 256, None), 8);
        assert_eq!(att_splits(1, 4, 4096, None), 1);
        assert_eq!(att_splits(264, 4, 32_768, Some(5)), 5);
    }

    #[test]
    fn cta_items_partition_the_items() {
        for (items, ctas) in [(1, 264), (7, 3), (4752, 264), (264, 264)] {
            let mut next = 0;
            for c in 0..ctas {
                let r = cta_items(items, c, ctas);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, items);
        }
    }
}
