//! GGML block layouts as plain `#[repr(C)]` structs of bytes (alignment 1, so any byte
//! slice of whole blocks can be viewed as a slice of blocks without copying).
//! Half-precision scales are stored as little-endian IEEE fp16 bytes.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Reads a little-endian fp16 stored as two bytes and widens it exactly to f32.
#[inline(always)]
pub fn f16_le(b: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(b)).to_f32()
}

/// Rounds an f32 to fp16 (round to nearest even, as `GGML_FP32_TO_FP16`) and returns LE bytes.
#[inline(always)]
pub fn to_f16_le(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// Q4_0: 32 weights, x = d·(q − 8); element j in the low nibble of qs[j], j+16 in the high one.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; 16],
}

/// Q4_1: 32 weights, x = d·q + m; nibble layout as Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; 16],
}

/// Q5_0: 32 weights, x = d·(q − 16); low 4 bits as Q4_0, bit j of `qh` (u32 LE) is the
/// 5th bit of element j.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// Q5_1: 32 weights, x = d·q + m; bit layout as Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// Q8_0: 32 values, x = d·q. Also the activation block for Q4_0/Q5_0/Q8_0 weights.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [i8; 32],
}

/// Q8_1: 32 values, x = d·q, plus s = d·Σq (activation block for Q4_1/Q5_1 weights).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ8_1 {
    pub d: [u8; 2],
    pub s: [u8; 2],
    pub qs: [i8; 32],
}

/// Q2_K: 256 weights in 16 groups of 16; scales[i] = (min << 4) | scale (4 bits each);
/// x = d·scale·q − dmin·min, q 2 bits.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ2K {
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: [u8; 2],
    pub dmin: [u8; 2],
}

/// Q3_K: 256 weights in 16 groups of 16; 6-bit signed scales (offset 32) packed in 12 bytes;
/// q = 2 low bits from qs, minus 4 when the `hmask` bit is clear; x = d·(scale − 32)·q.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ3K {
    pub hmask: [u8; 32],
    pub qs: [u8; 64],
    pub scales: [u8; 12],
    pub d: [u8; 2],
}

/// Q4_K: 256 weights in 8 groups of 32; 6-bit scale and min per group packed in 12 bytes;
/// x = d·scale·q − dmin·min, q 4 bits.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// Q5_K: as Q4_K with a 5th bit per weight in `qh` (bit g of qh[l] for group g).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

/// Q6_K: 256 weights in 16 groups of 16; int8 scale per group; x = d·scale·(q − 32), q 6 bits
/// (4 low bits in `ql`, 2 high bits in `qh`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: [u8; 2],
}

/// Q8_K: 256 values, x = d·q with an f32 `d`; `bsums[j]` = Σ of q over group j of 16.
/// The activation block for all k-quant weights.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ8K {
    pub d: [u8; 4],
    pub qs: [i8; 256],
    pub bsums: [[u8; 2]; 16],
}

impl BlockQ8K {
    #[inline(always)]
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }
    #[inline(always)]
    pub fn bsum(&self, j: usize) -> i32 {
        i16::from_le_bytes(self.bsums[j]) as i32
    }
}

/// Unpacks the 8 six-bit (scale, min) pairs of a Q4_K/Q5_K block.
/// Bytes 0..4 hold scales 0..3 (low 6 bits), 4..8 mins 0..3; groups 4..7 take their low
/// nibble from bytes 8..12 and their top two bits from the top bits of bytes 0..8.
#[inline(always)]
pub fn k_scale_min(scales: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        let sc = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        let m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
        (sc, m)
    }
}

/// Unpacks the 16 six-bit scales of a Q3_K block (values 0..63; subtract 32 for the signed scale).
#[inline(always)]
pub fn q3k_scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = if i < 8 { s[i] & 0x0F } else { s[i - 8] >> 4 };
        let high = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}
