//! Scalar reference dequantization: raw GGML blocks → f32.
//!
//! Every formula is evaluated in f32 in the same order as ggml's `dequantize_row_*`
//! (and gguf-py's numpy code): first the per-group scale `d·sc` (and `dmin·m`) as one f32
//! product, then `scale·q − min`. No fused multiply-add, so results are bit-identical to
//! gguf-py's `gguf.quants.dequantize` (checked by `tests/quant_golden.rs`).

use super::blocks::*;
use super::types::GgmlType;
use bytemuck::cast_slice;

/// Dequantizes `dst.len()` elements of type `ty` from `src`.
///
/// Panics if `src.len()` is not exactly the byte size of `dst.len()` elements: callers
/// pass tensor rows whose sizes were validated when the model file was opened.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let expected = ty.bytes_for(dst.len() as u64);
    assert_eq!(
        expected,
        Some(src.len() as u64),
        "dequantize_row: {} bytes for {} elements of {ty}",
        src.len(),
        dst.len()
    );
    match ty {
        GgmlType::F32 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        GgmlType::F16 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f16_le([s[0], s[1]]);
            }
        }
        GgmlType::BF16 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f32::from_bits((u16::from_le_bytes([s[0], s[1]]) as u32) << 16);
            }
        }
        GgmlType::Q4_0 => each(cast_slice(src), dst, dq_q4_0),
        GgmlType::Q4_1 => each(cast_slice(src), dst, dq_q4_1),
        GgmlType::Q5_0 => each(cast_slice(src), dst, dq_q5_0),
        GgmlType::Q5_1 => each(cast_slice(src), dst, dq_q5_1),
        GgmlType::Q8_0 => each(cast_slice(src), dst, dq_q8_0),
        GgmlType::Q8_1 => each(cast_slice(src), dst, dq_q8_1),
        GgmlType::Q2_K => each(cast_slice(src), dst, dq_q2_k),
        GgmlType::Q3_K => each(cast_slice(src), dst, dq_q3_k),
        GgmlType::Q4_K => each(cast_slice(src), dst, dq_q4_k),
        GgmlType::Q5_K => each(cast_slice(src), dst, dq_q5_k),
        GgmlType::Q6_K => each(cast_slice(src), dst, dq_q6_k),
        GgmlType::Q8_K => each(cast_slice(src), dst, dq_q8_k),
    }
}

/// Convenience: dequantize a whole byte slice into a new vector of `n` values.
pub fn dequantize(ty: GgmlType, src: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n];
    dequantize_row(ty, src, &mut out);
    out
}

#[inline(always)]
fn each<B: Copy, const N: usize>(blocks: &[B], dst: &mut [f32], f: fn(&B, &mut [f32; N])) {
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(N)) {
        f(b, y.try_into().unwrap());
    }
}

/// x = d·(q − 8).
pub fn dq_q4_0(b: &BlockQ4_0, y: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for j in 0..16 {
        y[j] = d * ((b.qs[j] & 0x0F) as i32 - 8) as f32;
        y[j + 16] = d * ((b.qs[j] >> 4) as i32 - 8) as f32;
    }
}

/// x = d·q + m.
pub fn dq_q4_1(b: &BlockQ4_1, y: &mut [f32; 32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for j in 0..16 {
        y[j] = d * (b.qs[j] & 0x0F) as f32 + m;
        y[j + 16] = d * (b.qs[j] >> 4) as f32 + m;
    }
}

#[inline(always)]
fn q5_values(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

/// x = d·(q − 16), q 5 bits.
pub fn dq_q5_0(b: &BlockQ5_0, y: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (o, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
        *o = d * (q as i32 - 16) as f32;
    }
}

/// x = d·q + m, q 5 bits.
pub fn dq_q5_1(b: &BlockQ5_1, y: &mut [f32; 32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for (o, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
        *o = d * q as f32 + m;
    }
}

/// x = q·d.
pub fn dq_q8_0(b: &BlockQ8_0, y: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (o, &q) in y.iter_mut().zip(&b.qs) {
        *o = q as f32 * d;
    }
}

/// x = q·d (the `s` field is not needed to dequantize).
pub fn dq_q8_1(b: &BlockQ8_1, y: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (o, &q) in y.iter_mut().zip(&b.qs) {
        *o = q as f32 * d;
    }
}

/// x = (d·sc)·q − (dmin·m) per group of 16; 2-bit q: byte l of each 32-byte chunk holds
/// four groups at shifts 0, 2, 4, 6.
pub fn dq_q2_k(b: &BlockQ2K, y: &mut [f32; 256]) {
    let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
    for g in 0..16 {
        let (half, shift, part) = (g / 8, 2 * ((g % 8) / 2), g % 2);
        let dl = d * (b.scales[g] & 0x0F) as f32;
        let ml = dmin * (b.scales[g] >> 4) as f32;
        for l in 0..16 {
            let q = (b.qs[32 * half + 16 * part + l] >> shift) & 3;
            y[16 * g + l] = dl * q as f32 - ml;
        }
    }
}

/// x = (d·(sc − 32))·(q − 4·!hbit) per group of 16.
pub fn dq_q3_k(b: &BlockQ3K, y: &mut [f32; 256]) {
    let d = f16_le(b.d);
    let scales = q3k_scales(&b.scales);
    for g in 0..16 {
        let (half, shift, part) = (g / 8, 2 * ((g % 8) / 2), g % 2);
        let hbit = g / 2; // one hmask bit per 32-element run
        let dl = d * scales[g] as f32;
        for l in 0..16 {
            let i = 16 * part + l;
            let low = ((b.qs[32 * half + i] >> shift) & 3) as i8;
            let high = if (b.hmask[i] >> hbit) & 1 == 1 { 0 } else { 4 };
            y[16 * g + l] = dl * (low - high) as f32;
        }
    }
}

/// x = (d·sc)·q − (dmin·m) per group of 32; group 2k in low nibbles, 2k+1 in high nibbles
/// of bytes 32k..32k+32.
pub fn dq_q4_k(b: &BlockQ4K, y: &mut [f32; 256]) {
    let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
    for g in 0..8 {
        let (sc, m) = k_scale_min(&b.scales, g);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        let shift = 4 * (g % 2);
        for l in 0..32 {
            let q = (b.qs[32 * (g / 2) + l] >> shift) & 0x0F;
            y[32 * g + l] = dl * q as f32 - ml;
        }
    }
}

/// As Q4_K with the 5th bit of element l of group g in bit g of qh[l].
pub fn dq_q5_k(b: &BlockQ5K, y: &mut [f32; 256]) {
    let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
    for g in 0..8 {
        let (sc, m) = k_scale_min(&b.scales, g);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        let shift = 4 * (g % 2);
        for l in 0..32 {
            let q = ((b.qs[32 * (g / 2) + l] >> shift) & 0x0F) | (((b.qh[l] >> g) & 1) << 4);
            y[32 * g + l] = dl * q as f32 - ml;
        }
    }
}

/// x = (d·sc)·(q − 32) per group of 16. In each 128-element half, element 32·k + l takes
/// its low nibble from ql[l + 32·(k%2)] (high nibble when k ≥ 2) and its top two bits from
/// qh[l] at shift 2k.
pub fn dq_q6_k(b: &BlockQ6K, y: &mut [f32; 256]) {
    let d = f16_le(b.d);
    for i in 0..256 {
        let (half, r) = (i / 128, i % 128);
        let (k, l) = (r / 32, r % 32);
        let lo = b.ql[64 * half + l + 32 * (k % 2)];
        let lo = if k >= 2 { lo >> 4 } else { lo & 0x0F };
        let hi = (b.qh[32 * half + l] >> (2 * k)) & 3;
        let q = (lo | (hi << 4)) as i32 - 32;
        y[i] = d * b.scales[i / 16] as f32 * q as f32;
    }
}

/// x = d·q with an f32 d.
pub fn dq_q8_k(b: &BlockQ8K, y: &mut [f32; 256]) {
    let d = b.d();
    for (o, &q) in y.iter_mut().zip(&b.qs) {
        *o = d * q as f32;
    }
}
