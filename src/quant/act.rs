//! Activation quantization for the `q8` matvec semantics: the f32 input vector of a
//! quantized matvec is quantized per block exactly as llama.cpp's CPU backend does on
//! x86 (the build that produced the reference outputs in `tests/reference/`, REFERENCE.md):
//!
//! - Q8_0 / Q8_1 (for Q4_0, Q5_0, Q8_0 / Q4_1, Q5_1 weights), ggml's AVX path:
//!   amax = max|x| over 32 values, d = amax/127 stored as fp16, q = round_half_even(x·(127/amax)).
//!   Q8_1 also stores s = fp16(d_f32 · Σq).
//! - Q8_K (for all k-quant weights), ggml's reference path (also used on x86): find the
//!   value `max` of largest magnitude (first one on ties), iscale = −127/max,
//!   q = min(127, round_half_even(iscale·x)), d = 1/iscale (f32), bsums = Σq per 16.

use super::blocks::*;

/// Quantizes `x` (length a multiple of 32) into Q8_0 blocks.
pub fn quantize_q8_0(x: &[f32]) -> Vec<BlockQ8_0> {
    x.chunks_exact(32)
        .map(|c| {
            let (d, id) = q8_scale(c);
            let mut qs = [0i8; 32];
            for (q, &v) in qs.iter_mut().zip(c) {
                *q = (v * id).round_ties_even() as i8;
            }
            BlockQ8_0 {
                d: to_f16_le(d),
                qs,
            }
        })
        .collect()
}

/// Quantizes `x` (length a multiple of 32) into Q8_1 blocks.
pub fn quantize_q8_1(x: &[f32]) -> Vec<BlockQ8_1> {
    x.chunks_exact(32)
        .map(|c| {
            let (d, id) = q8_scale(c);
            let mut qs = [0i8; 32];
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(c) {
                *q = (v * id).round_ties_even() as i8;
                sum += *q as i32;
            }
            BlockQ8_1 {
                d: to_f16_le(d),
                s: to_f16_le(d * sum as f32),
                qs,
            }
        })
        .collect()
}

/// (d, 1/d as ggml's AVX code computes it: 127/amax, or 0 for an all-zero block).
fn q8_scale(c: &[f32]) -> (f32, f32) {
    let amax = c.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (d, id)
}

/// Quantizes `x` (length a multiple of 256) into Q8_K blocks.
pub fn quantize_q8_k(x: &[f32]) -> Vec<BlockQ8K> {
    x.chunks_exact(256)
        .map(|c| {
            let mut amax = 0.0f32;
            let mut max = 0.0f32;
            for &v in c {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            let mut b = BlockQ8K {
                d: [0; 4],
                qs: [0; 256],
                bsums: [[0; 2]; 16],
            };
            if amax == 0.0 {
                return b;
            }
            let iscale = -127.0 / max;
            for (q, &v) in b.qs.iter_mut().zip(c) {
                *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
            }
            for (j, s) in b.bsums.iter_mut().enumerate() {
                let sum: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
                *s = (sum as i16).to_le_bytes();
            }
            b.d = (1.0 / iscale).to_le_bytes();
            b
        })
        .collect()
}
