//! Scalar reference of the `q8` matvec semantics: integer dot products between raw weight
//! blocks and quantized activation blocks, as llama.cpp's `ggml_vec_dot_<w>_<act>`.
//!
//! Per block the integer part is exact (i32). The float combination is defined here as:
//! legacy types `sum += (d_w·d_a)·sumi` (+ `m_w·s_a` for Q4_1/Q5_1), k-quants
//! `sum += (d_w·d_a)·isum` then `sum −= (dmin_w·d_a)·Σ min·bsum`, blocks in order, f32.
//! The SIMD fast paths in `simd/` compute the same integers and combine them in this
//! same order, so they are bit-identical to this file.

use super::blocks::*;
use super::types::GgmlType;
use bytemuck::cast_slice;

/// A quantized activation row (the `vec_dot_type` of some weight type).
#[derive(Clone, Debug)]
pub enum QuantAct {
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
    Q8K(Vec<BlockQ8K>),
}

impl std::fmt::Debug for BlockQ8_0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockQ8_0(d={})", f16_le(self.d))
    }
}
impl std::fmt::Debug for BlockQ8_1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockQ8_1(d={})", f16_le(self.d))
    }
}
impl std::fmt::Debug for BlockQ8K {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockQ8K(d={})", self.d())
    }
}

impl QuantAct {
    /// Quantizes `x` into the activation type that weights of type `w` are dotted with.
    /// Returns None for float weight types (they use f32 activations).
    pub fn for_weight(w: GgmlType, x: &[f32]) -> Option<QuantAct> {
        Some(match w.vec_dot_type()? {
            GgmlType::Q8_0 => QuantAct::Q8_0(super::act::quantize_q8_0(x)),
            GgmlType::Q8_1 => QuantAct::Q8_1(super::act::quantize_q8_1(x)),
            _ => QuantAct::Q8K(super::act::quantize_q8_k(x)),
        })
    }

    /// The activation values as the integer dot products see them (d·q), for tracing.
    pub fn dequantized(&self) -> Vec<f32> {
        let mut out = Vec::new();
        match self {
            QuantAct::Q8_0(b) => b.iter().for_each(|b| {
                let mut y = [0.0; 32];
                super::dequant::dq_q8_0(b, &mut y);
                out.extend_from_slice(&y)
            }),
            QuantAct::Q8_1(b) => b.iter().for_each(|b| {
                let mut y = [0.0; 32];
                super::dequant::dq_q8_1(b, &mut y);
                out.extend_from_slice(&y)
            }),
            QuantAct::Q8K(b) => b.iter().for_each(|b| {
                let mut y = [0.0; 256];
                super::dequant::dq_q8_k(b, &mut y);
                out.extend_from_slice(&y)
            }),
        }
        out
    }
}

/// Dot product of one weight row (raw blocks of type `w`) with a quantized activation row.
///
/// Panics when the activation type does not match `w.vec_dot_type()` or the lengths differ;
/// both are programming errors (the graph fixes the pairing).
pub fn vec_dot_q8(w: GgmlType, row: &[u8], act: &QuantAct) -> f32 {
    match (w, act) {
        (GgmlType::Q4_0, QuantAct::Q8_0(a)) => legacy(cast_slice(row), a, |b: &BlockQ4_0, a| {
            let mut s = 0i32;
            for j in 0..16 {
                s += ((b.qs[j] & 0x0F) as i32 - 8) * a.qs[j] as i32;
                s += ((b.qs[j] >> 4) as i32 - 8) * a.qs[j + 16] as i32;
            }
            (f16_le(b.d), s)
        }),
        (GgmlType::Q5_0, QuantAct::Q8_0(a)) => legacy(cast_slice(row), a, |b: &BlockQ5_0, a| {
            let q = q5(b.qh, &b.qs);
            let s = (0..32).map(|j| (q[j] as i32 - 16) * a.qs[j] as i32).sum();
            (f16_le(b.d), s)
        }),
        (GgmlType::Q8_0, QuantAct::Q8_0(a)) => legacy(cast_slice(row), a, |b: &BlockQ8_0, a| {
            let s = (0..32).map(|j| b.qs[j] as i32 * a.qs[j] as i32).sum();
            (f16_le(b.d), s)
        }),
        (GgmlType::Q4_1, QuantAct::Q8_1(a)) => {
            let blocks: &[BlockQ4_1] = cast_slice(row);
            assert_eq!(blocks.len(), a.len());
            let mut sum = 0.0f32;
            for (b, a) in blocks.iter().zip(a) {
                let mut s = 0i32;
                for j in 0..16 {
                    s += (b.qs[j] & 0x0F) as i32 * a.qs[j] as i32;
                    s += (b.qs[j] >> 4) as i32 * a.qs[j + 16] as i32;
                }
                sum += (f16_le(b.d) * f16_le(a.d)) * s as f32 + f16_le(b.m) * f16_le(a.s);
            }
            sum
        }
        (GgmlType::Q5_1, QuantAct::Q8_1(a)) => {
            let blocks: &[BlockQ5_1] = cast_slice(row);
            assert_eq!(blocks.len(), a.len());
            let mut sum = 0.0f32;
            for (b, a) in blocks.iter().zip(a) {
                let q = q5(b.qh, &b.qs);
                let s: i32 = (0..32).map(|j| q[j] as i32 * a.qs[j] as i32).sum();
                sum += (f16_le(b.d) * f16_le(a.d)) * s as f32 + f16_le(b.m) * f16_le(a.s);
            }
            sum
        }
        (GgmlType::Q2_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, isum_q2_k),
        (GgmlType::Q3_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, isum_q3_k),
        (GgmlType::Q4_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, isum_q4_k),
        (GgmlType::Q5_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, isum_q5_k),
        (GgmlType::Q6_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, isum_q6_k),
        (GgmlType::Q8_K, QuantAct::Q8K(a)) => kquant(cast_slice(row), a, |b: &BlockQ8K, a| {
            let s = (0..256).map(|j| b.qs[j] as i32 * a.qs[j] as i32).sum();
            KSums {
                d: b.d(),
                isum: s,
                dmin: 0.0,
                msum: 0,
            }
        }),
        (w, a) => panic!("vec_dot_q8: weight type {w} cannot be dotted with {a:?}"),
    }
}

#[inline(always)]
fn q5(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

/// Σ over blocks of (d_w·d_a)·sumi, in block order.
#[inline(always)]
pub(crate) fn legacy<B>(w: &[B], a: &[BlockQ8_0], f: impl Fn(&B, &BlockQ8_0) -> (f32, i32)) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q8: block count mismatch");
    let mut sum = 0.0f32;
    for (b, a) in w.iter().zip(a) {
        let (dw, s) = f(b, a);
        sum += (dw * f16_le(a.d)) * s as f32;
    }
    sum
}

/// Integer parts of one k-quant block dot: `d·isum − dmin·msum` (both scaled by d_a).
pub struct KSums {
    pub d: f32,
    pub isum: i32,
    pub dmin: f32,
    pub msum: i32,
}

#[inline(always)]
pub(crate) fn kquant<B>(w: &[B], a: &[BlockQ8K], f: impl Fn(&B, &BlockQ8K) -> KSums) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q8: block count mismatch");
    let mut sum = 0.0f32;
    for (b, a) in w.iter().zip(a) {
        let k = f(b, a);
        sum += (k.d * a.d()) * k.isum as f32;
        sum -= (k.dmin * a.d()) * k.msum as f32;
    }
    sum
}

fn dot16(q: impl Fn(usize) -> i32, a: &[i8]) -> i32 {
    (0..16).map(|l| q(l) * a[l] as i32).sum()
}

pub fn isum_q2_k(b: &BlockQ2K, a: &BlockQ8K) -> KSums {
    let mut isum = 0;
    let mut msum = 0;
    for g in 0..16 {
        let (half, shift, part) = (g / 8, 2 * ((g % 8) / 2), g % 2);
        let base = 32 * half + 16 * part;
        let s = dot16(|l| ((b.qs[base + l] >> shift) & 3) as i32, &a.qs[16 * g..]);
        isum += (b.scales[g] & 0x0F) as i32 * s;
        msum += (b.scales[g] >> 4) as i32 * a.bsum(g);
    }
    KSums {
        d: f16_le(b.d),
        isum,
        dmin: f16_le(b.dmin),
        msum,
    }
}

pub fn isum_q3_k(b: &BlockQ3K, a: &BlockQ8K) -> KSums {
    let scales = q3k_scales(&b.scales);
    let mut isum = 0;
    for g in 0..16 {
        let (half, shift, part) = (g / 8, 2 * ((g % 8) / 2), g % 2);
        let s = dot16(
            |l| {
                let i = 16 * part + l;
                let low = ((b.qs[32 * half + i] >> shift) & 3) as i32;
                let high = if (b.hmask[i] >> (g / 2)) & 1 == 1 {
                    0
                } else {
                    4
                };
                low - high
            },
            &a.qs[16 * g..],
        );
        isum += scales[g] as i32 * s;
    }
    KSums {
        d: f16_le(b.d),
        isum,
        dmin: 0.0,
        msum: 0,
    }
}

pub fn isum_q4_k(b: &BlockQ4K, a: &BlockQ8K) -> KSums {
    let mut isum = 0;
    let mut msum = 0;
    for g in 0..8 {
        let (sc, m) = k_scale_min(&b.scales, g);
        let shift = 4 * (g % 2);
        let s: i32 = (0..32)
            .map(|l| ((b.qs[32 * (g / 2) + l] >> shift) & 0x0F) as i32 * a.qs[32 * g + l] as i32)
            .sum();
        isum += sc as i32 * s;
        msum += m as i32 * (a.bsum(2 * g) + a.bsum(2 * g + 1));
    }
    KSums {
        d: f16_le(b.d),
        isum,
        dmin: f16_le(b.dmin),
        msum,
    }
}

pub fn isum_q5_k(b: &BlockQ5K, a: &BlockQ8K) -> KSums {
    let mut isum = 0;
    let mut msum = 0;
    for g in 0..8 {
        let (sc, m) = k_scale_min(&b.scales, g);
        let shift = 4 * (g % 2);
        let s: i32 = (0..32)
            .map(|l| {
                let q = ((b.qs[32 * (g / 2) + l] >> shift) & 0x0F) | (((b.qh[l] >> g) & 1) << 4);
                q as i32 * a.qs[32 * g + l] as i32
            })
            .sum();
        isum += sc as i32 * s;
        msum += m as i32 * (a.bsum(2 * g) + a.bsum(2 * g + 1));
    }
    KSums {
        d: f16_le(b.d),
        isum,
        dmin: f16_le(b.dmin),
        msum,
    }
}

/// Q6_K 6-bit value of element i (0..256), minus 32.
#[inline(always)]
pub fn q6k_value(b: &BlockQ6K, i: usize) -> i32 {
    let (half, r) = (i / 128, i % 128);
    let (k, l) = (r / 32, r % 32);
    let lo = b.ql[64 * half + l + 32 * (k % 2)];
    let lo = if k >= 2 { lo >> 4 } else { lo & 0x0F };
    let hi = (b.qh[32 * half + l] >> (2 * k)) & 3;
    (lo | (hi << 4)) as i32 - 32
}

pub fn isum_q6_k(b: &BlockQ6K, a: &BlockQ8K) -> KSums {
    let mut isum = 0;
    for g in 0..16 {
        let s = dot16(|l| q6k_value(b, 16 * g + l), &a.qs[16 * g..]);
        isum += b.scales[g] as i32 * s;
    }
    KSums {
        d: f16_le(b.d),
        isum,
        dmin: 0.0,
        msum: 0,
    }
}

/// Reference f32 dot of a weight row with f32 activations (the `f32` semantics):
/// dequantize the row, then Σ w·x accumulated in f32, element order.
pub fn vec_dot_f32_ref(w: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    let wf = super::dequant::dequantize(w, row, x.len());
    wf.iter().zip(x).fold(0.0f32, |s, (a, b)| s + a * b)
}
