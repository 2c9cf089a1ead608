//! The AVX2 (+FMA, F16C) kernels behind `simd/mod.rs`: vector helpers (also used by
//! `simd_dequant.rs`), the per-block integer dots of the hot types, the f32 dot and axpy;
//! the tiled matmul over many rows is in `tiled.rs`.

use super::*;
use std::arch::x86_64::*;

mod tiled;

pub use tiled::matmul_rows;

/// fp16 (LE bytes) → f32 with the F16C instruction, inline (exact, like `f16_le`; a call
/// into a library conversion here would spill every vector register in the hot loops).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn h2f(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(
        _mm_cvtsi32_si128(u16::from_le_bytes(b) as i32),
    ))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn hsum_f32(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Σ x·y over 32 signed bytes as 8 i32 lanes: |x|·sign(y, x) with maddubs (no i16
/// saturation possible: |x| ≤ 128, |y| ≤ 127 since activations never hold −128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8_32(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) unsafe fn load32(p: *const u8) -> __m256i {
    unsafe { _mm256_loadu_si256(p as *const __m256i) }
}

/// 32 bits → 32 bytes, byte j = 0xFF where bit j of `bits` is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn bits_to_bytes(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    // Byte j takes the byte of `bits` holding bit j ...
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let v = _mm256_shuffle_epi8(v, shuf);
    // ... and tests bit j % 8 of it.
    let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask)
}

/// Unpacks 16 nibble bytes into 32 bytes: low nibbles first, then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) unsafe fn nibbles(qs: *const u8) -> __m256i {
    let q = unsafe { _mm_loadu_si128(qs as *const __m128i) };
    let lo = _mm_and_si128(q, _mm_set1_epi8(0x0F));
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(q), _mm_set1_epi8(0x0F));
    _mm256_set_m128i(hi, lo)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q5_0_block(b: &BlockQ5_0, a: &BlockQ8_0) -> i32 {
    let q = unsafe { nibbles(b.qs.as_ptr()) };
    let high = _mm256_and_si256(
        bits_to_bytes(u32::from_le_bytes(b.qh)),
        _mm256_set1_epi8(0x10),
    );
    let w = _mm256_sub_epi8(_mm256_or_si256(q, high), _mm256_set1_epi8(16));
    let y = unsafe { load32(a.qs.as_ptr() as *const u8) };
    hsum_i32(dot_i8_32(w, y))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q8_0_block(b: &BlockQ8_0, a: &BlockQ8_0) -> i32 {
    let (w, y) = unsafe {
        (
            load32(b.qs.as_ptr() as *const u8),
            load32(a.qs.as_ptr() as *const u8),
        )
    };
    hsum_i32(dot_i8_32(w, y))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q4_k_block(b: &BlockQ4K, a: &BlockQ8K) -> KSums {
    let mut acc = _mm256_setzero_si256();
    let mut msum = 0i32;
    for k in 0..4 {
        let q = unsafe { load32(b.qs.as_ptr().add(32 * k)) };
        let lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), _mm256_set1_epi8(0x0F));
        for (g, w) in [(2 * k, lo), (2 * k + 1, hi)] {
            let (sc, m) = k_scale_min(&b.scales, g);
            let y = unsafe { load32(a.qs.as_ptr().add(32 * g) as *const u8) };
            let p = _mm256_maddubs_epi16(w, y); // u4·i8 pairs: |p| ≤ 2·15·128
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(sc as i16)));
            msum += m as i32 * (a.bsum(2 * g) + a.bsum(2 * g + 1));
        }
    }
    KSums {
        d: h2f(b.d),
        isum: hsum_i32(acc),
        dmin: h2f(b.dmin),
        msum,
    }
}

/// A Q6_K block unpacked for the integer dots: for each of its 8 runs of 32 weights, the
/// 6-bit values as unsigned bytes (q = ql | qh << 4, in [0, 63], for maddubs) and the run's
/// two 16-weight scales spread over the 16 lanes of an i16 vector.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6_k_runs(b: &BlockQ6K) -> ([__m256i; 8], [__m256i; 8]) {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    let mut w = [_mm256_setzero_si256(); 8];
    let mut sc = [_mm256_setzero_si256(); 8];
    for half in 0..2 {
        let ql0 = unsafe { load32(b.ql.as_ptr().add(64 * half)) };
        let ql1 = unsafe { load32(b.ql.as_ptr().add(64 * half + 32)) };
        let qh = unsafe { load32(b.qh.as_ptr().add(32 * half)) };
        let parts = [
            (_mm256_and_si256(ql0, m4), _mm256_and_si256(qh, m2)),
            (
                _mm256_and_si256(ql1, m4),
                _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m2),
            ),
            (
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                _mm256_and_si256(_mm256_srli_epi16::<4>(qh), m2),
            ),
            (
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                _mm256_and_si256(_mm256_srli_epi16::<6>(qh), m2),
            ),
        ];
        for (k, (lo, hi)) in parts.into_iter().enumerate() {
            let e = 128 * half + 32 * k; // first element of this run of 32
            w[e / 32] = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi));
            let (s0, s1) = (b.scales[e / 16] as i16, b.scales[e / 16 + 1] as i16);
            sc[e / 32] = _mm256_setr_epi16(
                s0, s0, s0, s0, s0, s0, s0, s0, s1, s1, s1, s1, s1, s1, s1, s1,
            );
        }
    }
    (w, sc)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q6_k_block(b: &BlockQ6K, a: &BlockQ8K) -> KSums {
    // Σ sc·(q−32)·y = Σ sc·q·y − 32·Σ sc·bsum, with q ∈ [0, 63] unsigned for maddubs.
    let (w, sc) = unsafe { q6_k_runs(b) };
    let mut acc = _mm256_setzero_si256();
    for g in 0..8 {
        let y = unsafe { load32(a.qs.as_ptr().add(32 * g) as *const u8) };
        let p = _mm256_maddubs_epi16(w[g], y); // u6·i8 pairs: |p| ≤ 2·63·128
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc[g]));
    }
    let corr: i32 = (0..16).map(|g| b.scales[g] as i32 * a.bsum(g)).sum();
    KSums {
        d: h2f(b.d),
        isum: hsum_i32(acc) - 32 * corr,
        dmin: 0.0,
        msum: 0,
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i + 8 * j)),
                    _mm256_loadu_ps(pb.add(i + 8 * j)),
                )
            };
            *s = _mm256_fmadd_ps(x, y, *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut sum = hsum_f32(s);
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn axpy_f32(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len();
    let va = _mm256_set1_ps(a);
    let mut i = 0;
    while i + 8 <= n {
        unsafe {
            let p = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                p,
                _mm256_fmadd_ps(va, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(p)),
            );
        }
        i += 8;
    }
    while i < n {
        y[i] += a * x[i];
        i += 1;
    }
}
