//! Fast paths for the hot weight types of real Q4_K_M files (Q5_0, Q8_0, Q4_K, Q6_K) and
//! for f32 dot products, with AVX2 (+FMA) on x86_64, chosen at run time.
//!
//! The `q8` kernels compute exactly the same per-block integers as the scalar reference in
//! `dot.rs` and combine them through the same `legacy` / `kquant` loops, so their results
//! are bit-identical to the reference (tested in `tests/quant_simd.rs`).
//!
//! This file chooses the kernel; the AVX2 kernels are in `x86/` (`mod.rs`: vector helpers,
//! per-block dots, f32 dot and axpy; `tiled.rs`: the tiled matmul over many rows).

use super::blocks::*;
use super::dot::{KSums, QuantAct, kquant, legacy, vec_dot_q8};
use super::types::GgmlType;
use bytemuck::cast_slice;

/// True when this CPU runs the AVX2 kernels (AVX2, FMA and F16C; checked once).
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `vec_dot_q8` with the fastest available kernel; identical results to the reference.
pub fn vec_dot_q8_fast(w: GgmlType, row: &[u8], act: &QuantAct) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        unsafe {
            match (w, act) {
                (GgmlType::Q5_0, QuantAct::Q8_0(a)) => {
                    return legacy(cast_slice(row), a, |b: &BlockQ5_0, a| {
                        (f16_le(b.d), x86::q5_0_block(b, a))
                    });
                }
                (GgmlType::Q8_0, QuantAct::Q8_0(a)) => {
                    return legacy(cast_slice(row), a, |b: &BlockQ8_0, a| {
                        (f16_le(b.d), x86::q8_0_block(b, a))
                    });
                }
                (GgmlType::Q4_K, QuantAct::Q8K(a)) => {
                    return kquant(cast_slice(row), a, |b, a| x86::q4_k_block(b, a));
                }
                (GgmlType::Q6_K, QuantAct::Q8K(a)) => {
                    return kquant(cast_slice(row), a, |b, a| x86::q6_k_block(b, a));
                }
                _ => {}
            }
        }
    }
    vec_dot_q8(w, row, act)
}

/// Many dots at once: `out[i·T + t] = vec_dot_q8(w, row i, acts[t])` for the `rows.len() /
/// row_bytes` weight rows in `rows` and the T = `acts.len()` activation rows. Bit-identical to
/// calling `vec_dot_q8` per pair; on AVX2 the hot types run tiled kernels that unpack each
/// weight block once for several rows and reduce eight integer dots at a time.
pub fn matmul_rows_q8(
    w: GgmlType,
    rows: &[u8],
    row_bytes: usize,
    acts: &[QuantAct],
    out: &mut [f32],
) {
    let n_rows = rows.len() / row_bytes;
    let t_rows = acts.len();
    assert_eq!(out.len(), n_rows * t_rows);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        if unsafe { x86::matmul_rows(w, rows, row_bytes, acts, out) } {
            return;
        }
    }
    for (i, o) in out.chunks_exact_mut(t_rows).enumerate() {
        let row = &rows[i * row_bytes..(i + 1) * row_bytes];
        for (y, a) in o.iter_mut().zip(acts) {
            *y = vec_dot_q8_fast(w, row, a);
        }
    }
}

/// Σ a·b in f32 with the fastest available kernel (8-lane FMA partial sums on AVX2).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { x86::dot_f32(a, b) };
    }
    a.iter().zip(b).fold(0.0f32, |s, (x, y)| s + x * y)
}

/// y += a·x with the fastest available kernel.
pub fn axpy_f32(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { x86::axpy_f32(y, a, x) };
    }
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86;
