//! Fast paths for the `f32` matmul semantics, with AVX2 + F16C on x86_64 (chosen at run
//! time, like `simd/`):
//! - `dequantize_row_fast`: bit-identical to the scalar reference `dequantize_row`;
//! - `dot_row_f32`: one weight row dotted with an f32 activation row, dequantizing block by
//!   block in registers, bit-identical to `dequantize_row` followed by `simd::dot_f32`.
//!
//! Why bit-identical: every reference formula in `dequant.rs` is a fixed sequence of
//! correctly rounded f32 operations per element (exact integer → f32 conversion, exact
//! fp16 → f32 widening, the product `d·sc`, then `·q` and `± m`, never a fused
//! multiply-add); each vector lane does the same operations in the same order. The fused
//! dot keeps `dot_f32`'s accumulation order exactly: 32 elements at a time into four 8-lane
//! FMA accumulators (elements 8j..8j+8 of each run of 32 into accumulator j), then runs of 8
//! into accumulator 0, the same horizontal sum, then a scalar tail. Block sizes (32, 256)
//! are multiples of 32, so quantized rows never reach the tails; float rows may.
//! `tests/quant_simd.rs` checks both functions bit for bit on random and edge-value blocks.

use super::dequant::dequantize_row;
use super::simd::{dot_f32, has_avx2};
use super::types::GgmlType;

/// `dequantize_row` with the fastest available kernel; identical results.
///
/// Panics, like `dequantize_row`, if `src` is not exactly the bytes of `dst.len()` elements.
pub fn dequantize_row_fast(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    check_len(ty, src, dst.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time; lengths checked above.
        unsafe { x86::dequantize(ty, src, dst) };
        return;
    }
    dequantize_row(ty, src, dst)
}

/// Σ w·x over one weight row `src` of type `ty` and the f32 row `x`: bit-identical to
/// `dequantize_row(ty, src, buf)` then `dot_f32(buf, x)`, without the row buffer on AVX2.
///
/// Panics if `src` is not exactly the bytes of `x.len()` elements.
pub fn dot_row_f32(ty: GgmlType, src: &[u8], x: &[f32]) -> f32 {
    check_len(ty, src, x.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected at run time; lengths checked above.
        return unsafe { x86::dot_row(ty, src, x) };
    }
    let mut buf = vec![0.0f32; x.len()];
    dequantize_row(ty, src, &mut buf);
    dot_f32(&buf, x)
}

fn check_len(ty: GgmlType, src: &[u8], n: usize) {
    assert_eq!(
        ty.bytes_for(n as u64),
        Some(src.len() as u64),
        "{} bytes for {n} elements of {ty}",
        src.len()
    );
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::blocks::*;
    use super::super::simd::x86::{bits_to_bytes, h2f, hsum_f32, load32, nibbles};
    use super::GgmlType;
    use bytemuck::{Pod, cast_slice};
    use std::arch::x86_64::*;

    /// 32 consecutive dequantized values, as four vectors of 8.
    type V4 = [__m256; 4];

    /// 32 signed bytes → 32 f32 (exact).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn i8_to_f32(v: __m256i) -> V4 {
        let cvt = |x: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x));
        let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        [
            cvt(lo),
            cvt(_mm_unpackhi_epi64(lo, lo)),
            cvt(hi),
            cvt(_mm_unpackhi_epi64(hi, hi)),
        ]
    }

    /// `s·q` per lane (one rounding), the reference's `d * q as f32`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scaled(s: [f32; 2], q: V4) -> V4 {
        let (a, b) = (_mm256_set1_ps(s[0]), _mm256_set1_ps(s[1]));
        [
            _mm256_mul_ps(a, q[0]),
            _mm256_mul_ps(a, q[1]),
            _mm256_mul_ps(b, q[2]),
            _mm256_mul_ps(b, q[3]),
        ]
    }

    /// `s·q − m` per lane (two roundings), the k-quants' `dl * q as f32 - ml`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scaled_minus(s: [f32; 2], m: [f32; 2], q: V4) -> V4 {
        let p = scaled(s, q);
        let (a, b) = (_mm256_set1_ps(m[0]), _mm256_set1_ps(m[1]));
        [
            _mm256_sub_ps(p[0], a),
            _mm256_sub_ps(p[1], a),
            _mm256_sub_ps(p[2], b),
            _mm256_sub_ps(p[3], b),
        ]
    }

    /// `s·q + m` per lane (two roundings), the legacy `d * q as f32 + m`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scaled_plus(s: f32, m: f32, q: V4) -> V4 {
        let p = scaled([s, s], q);
        let m = _mm256_set1_ps(m);
        p.map(|v| _mm256_add_ps(v, m))
    }

    /// Bits `shift..shift+width` of each byte.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn field(v: __m256i, shift: u32, mask: i8) -> __m256i {
        let s = _mm256_srl_epi16(v, _mm_cvtsi32_si128(shift as i32));
        _mm256_and_si256(s, _mm256_set1_epi8(mask))
    }

    /// 0xFF in byte l where bit `bit` of byte l of `v` is set.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn bit_set(v: __m256i, bit: usize) -> __m256i {
        let m = _mm256_set1_epi8((1u8 << bit) as i8);
        _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m)
    }

    /// A block type: `run(k)` dequantizes elements 32k..32k+32 of the block exactly as
    /// its reference `dq_*` function does.
    trait Dq: Pod {
        /// Elements per block.
        const N: usize;
        unsafe fn run(&self, k: usize) -> V4;
    }

    impl Dq for BlockQ4_0 {
        const N: usize = 32;
        /// x = d·(q − 8).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { nibbles(self.qs.as_ptr()) };
            let d = h2f(self.d);
            scaled([d, d], i8_to_f32(_mm256_sub_epi8(q, _mm256_set1_epi8(8))))
        }
    }

    impl Dq for BlockQ4_1 {
        const N: usize = 32;
        /// x = d·q + m.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { nibbles(self.qs.as_ptr()) };
            scaled_plus(h2f(self.d), h2f(self.m), i8_to_f32(q))
        }
    }

    /// The 5-bit values of a Q5_0/Q5_1 block: low nibbles, bit j of `qh` as bit 4.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q5(qh: [u8; 4], qs: &[u8; 16]) -> __m256i {
        let q = unsafe { nibbles(qs.as_ptr()) };
        let high = _mm256_and_si256(
            bits_to_bytes(u32::from_le_bytes(qh)),
            _mm256_set1_epi8(0x10),
        );
        _mm256_or_si256(q, high)
    }

    impl Dq for BlockQ5_0 {
        const N: usize = 32;
        /// x = d·(q − 16).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { q5(self.qh, &self.qs) };
            let d = h2f(self.d);
            scaled([d, d], i8_to_f32(_mm256_sub_epi8(q, _mm256_set1_epi8(16))))
        }
    }

    impl Dq for BlockQ5_1 {
        const N: usize = 32;
        /// x = d·q + m.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { q5(self.qh, &self.qs) };
            scaled_plus(h2f(self.d), h2f(self.m), i8_to_f32(q))
        }
    }

    impl Dq for BlockQ8_0 {
        const N: usize = 32;
        /// x = q·d.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { load32(self.qs.as_ptr() as *const u8) };
            let d = h2f(self.d);
            scaled([d, d], i8_to_f32(q))
        }
    }

    impl Dq for BlockQ8_1 {
        const N: usize = 32;
        /// x = q·d.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, _: usize) -> V4 {
            let q = unsafe { load32(self.qs.as_ptr() as *const u8) };
            let d = h2f(self.d);
            scaled([d, d], i8_to_f32(q))
        }
    }

    impl Dq for BlockQ2K {
        const N: usize = 256;
        /// Groups 2k and 2k+1: x = (d·sc)·q − (dmin·m), q = bits 2(k%4).. of qs[32(k/4)..].
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, k: usize) -> V4 {
            let bytes = unsafe { load32(self.qs.as_ptr().add(32 * (k / 4))) };
            let q = field(bytes, 2 * (k % 4) as u32, 3);
            let (d, dmin) = (h2f(self.d), h2f(self.dmin));
            let s = |g: usize| d * (self.scales[g] & 0x0F) as f32;
            let m = |g: usize| dmin * (self.scales[g] >> 4) as f32;
            scaled_minus(
                [s(2 * k), s(2 * k + 1)],
                [m(2 * k), m(2 * k + 1)],
                i8_to_f32(q),
            )
        }
    }

    impl Dq for BlockQ3K {
        const N: usize = 256;
        /// Groups 2k and 2k+1: x = (d·sc)·(low − 4·!hbit), hbit = bit k of hmask[l].
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, k: usize) -> V4 {
            let bytes = unsafe { load32(self.qs.as_ptr().add(32 * (k / 4))) };
            let low = field(bytes, 2 * (k % 4) as u32, 3);
            let hm = unsafe { load32(self.hmask.as_ptr()) };
            let high = _mm256_andnot_si256(bit_set(hm, k), _mm256_set1_epi8(4));
            let sc = q3k_scales(&self.scales);
            let d = h2f(self.d);
            scaled(
                [d * sc[2 * k] as f32, d * sc[2 * k + 1] as f32],
                i8_to_f32(_mm256_sub_epi8(low, high)),
            )
        }
    }

    /// The 4-bit values of group g of a Q4_K/Q5_K block.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn k_nibbles(qs: &[u8; 128], g: usize) -> __m256i {
        let bytes = unsafe { load32(qs.as_ptr().add(32 * (g / 2))) };
        field(bytes, 4 * (g % 2) as u32, 0x0F)
    }

    impl Dq for BlockQ4K {
        const N: usize = 256;
        /// Group k: x = (d·sc)·q − (dmin·m).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, g: usize) -> V4 {
            let q = unsafe { k_nibbles(&self.qs, g) };
            let (sc, m) = k_scale_min(&self.scales, g);
            let (dl, ml) = (h2f(self.d) * sc as f32, h2f(self.dmin) * m as f32);
            scaled_minus([dl, dl], [ml, ml], i8_to_f32(q))
        }
    }

    impl Dq for BlockQ5K {
        const N: usize = 256;
        /// Group k: as Q4_K with bit k of qh[l] as bit 4 of q.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, g: usize) -> V4 {
            let low = unsafe { k_nibbles(&self.qs, g) };
            let qh = unsafe { load32(self.qh.as_ptr()) };
            let q = _mm256_or_si256(
                low,
                _mm256_and_si256(bit_set(qh, g), _mm256_set1_epi8(0x10)),
            );
            let (sc, m) = k_scale_min(&self.scales, g);
            let (dl, ml) = (h2f(self.d) * sc as f32, h2f(self.dmin) * m as f32);
            scaled_minus([dl, dl], [ml, ml], i8_to_f32(q))
        }
    }

    impl Dq for BlockQ6K {
        const N: usize = 256;
        /// Elements 32c..32c+32 (half h = c/4, k = c%4): low nibble from
        /// ql[64h + 32(k%2) + l] (high nibble when k ≥ 2), top bits from qh[32h + l] at
        /// shift 2k; x = (d·sc)·(q − 32), scales 2c and 2c+1.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, c: usize) -> V4 {
            let (h, k) = (c / 4, c % 4);
            let ql = unsafe { load32(self.ql.as_ptr().add(64 * h + 32 * (k % 2))) };
            let qh = unsafe { load32(self.qh.as_ptr().add(32 * h)) };
            let lo = field(ql, 4 * (k / 2) as u32, 0x0F);
            let hi = field(qh, 2 * k as u32, 3);
            let q = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi));
            let q = _mm256_sub_epi8(q, _mm256_set1_epi8(32));
            let d = h2f(self.d);
            scaled(
                [
                    d * self.scales[2 * c] as f32,
                    d * self.scales[2 * c + 1] as f32,
                ],
                i8_to_f32(q),
            )
        }
    }

    impl Dq for BlockQ8K {
        const N: usize = 256;
        /// x = d·q with an f32 d.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn run(&self, k: usize) -> V4 {
            let q = unsafe { load32(self.qs.as_ptr().add(32 * k) as *const u8) };
            let d = self.d();
            scaled([d, d], i8_to_f32(q))
        }
    }

    /// Element types without blocks: 8 values per load, one for the scalar tail.
    trait Floats {
        const BYTES: usize;
        unsafe fn load8(p: *const u8) -> __m256;
        fn one(b: &[u8]) -> f32;
    }
    struct F32;
    impl Floats for F32 {
        const BYTES: usize = 4;
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const u8) -> __m256 {
            unsafe { _mm256_loadu_ps(p as *const f32) }
        }
        fn one(b: &[u8]) -> f32 {
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }
    struct F16;
    impl Floats for F16 {
        const BYTES: usize = 2;
        /// Exact widening with F16C (the same values as `f16_le`, NaNs included).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const u8) -> __m256 {
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
        }
        fn one(b: &[u8]) -> f32 {
            f16_le([b[0], b[1]])
        }
    }
    struct Bf16;
    impl Floats for Bf16 {
        const BYTES: usize = 2;
        /// The 16 bits become the top half of an f32.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const u8) -> __m256 {
            let h = unsafe { _mm_loadu_si128(p as *const __m128i) };
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
        fn one(b: &[u8]) -> f32 {
            f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dq_blocks<B: Dq>(src: &[u8], dst: &mut [f32]) {
        let blocks: &[B] = cast_slice(src);
        for (b, out) in blocks.iter().zip(dst.chunks_exact_mut(B::N)) {
            for k in 0..B::N / 32 {
                let v = unsafe { b.run(k) };
                for (j, v) in v.into_iter().enumerate() {
                    // SAFETY: 32k + 8j + 8 ≤ N = out.len().
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(32 * k + 8 * j), v) };
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dq_floats<F: Floats>(src: &[u8], dst: &mut [f32]) {
        let n = dst.len();
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: src holds n·BYTES bytes (checked by the caller).
            unsafe {
                let v = F::load8(src.as_ptr().add(i * F::BYTES));
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        for (i, d) in dst.iter_mut().enumerate().skip(i) {
            *d = F::one(&src[i * F::BYTES..]);
        }
    }

    /// `dot_f32`'s final reduction: (acc0 + acc1) + (acc2 + acc3), then the same
    /// horizontal sum.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce(acc: V4) -> f32 {
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        hsum_f32(s)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_blocks<B: Dq>(src: &[u8], x: &[f32]) -> f32 {
        let blocks: &[B] = cast_slice(src);
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xb) in blocks.iter().zip(x.chunks_exact(B::N)) {
            for k in 0..B::N / 32 {
                let w = unsafe { b.run(k) };
                for j in 0..4 {
                    // SAFETY: 32k + 8j + 8 ≤ N = xb.len().
                    let xv = unsafe { _mm256_loadu_ps(xb.as_ptr().add(32 * k + 8 * j)) };
                    acc[j] = _mm256_fmadd_ps(w[j], xv, acc[j]);
                }
            }
        }
        reduce(acc)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_floats<F: Floats>(src: &[u8], x: &[f32]) -> f32 {
        let n = x.len();
        let (ps, px) = (src.as_ptr(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (loads): src holds n·BYTES bytes, x n floats, and i + 8 ≤ n at each load.
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let (w, xv) = unsafe {
                    (
                        F::load8(ps.add((i + 8 * j) * F::BYTES)),
                        _mm256_loadu_ps(px.add(i + 8 * j)),
                    )
                };
                *s = _mm256_fmadd_ps(w, xv, *s);
            }
            i += 32;
        }
        while i + 8 <= n {
            let (w, xv) = unsafe { (F::load8(ps.add(i * F::BYTES)), _mm256_loadu_ps(px.add(i))) };
            acc[0] = _mm256_fmadd_ps(w, xv, acc[0]);
            i += 8;
        }
        let mut sum = reduce(acc);
        while i < n {
            sum += F::one(&src[i * F::BYTES..]) * x[i];
            i += 1;
        }
        sum
    }

    /// Caller: AVX2/FMA/F16C present and `src` holds exactly `dst.len()` elements.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
        unsafe {
            match ty {
                GgmlType::F32 => dq_floats::<F32>(src, dst),
                GgmlType::F16 => dq_floats::<F16>(src, dst),
                GgmlType::BF16 => dq_floats::<Bf16>(src, dst),
                GgmlType::Q4_0 => dq_blocks::<BlockQ4_0>(src, dst),
                GgmlType::Q4_1 => dq_blocks::<BlockQ4_1>(src, dst),
                GgmlType::Q5_0 => dq_blocks::<BlockQ5_0>(src, dst),
                GgmlType::Q5_1 => dq_blocks::<BlockQ5_1>(src, dst),
                GgmlType::Q8_0 => dq_blocks::<BlockQ8_0>(src, dst),
                GgmlType::Q8_1 => dq_blocks::<BlockQ8_1>(src, dst),
                GgmlType::Q2_K => dq_blocks::<BlockQ2K>(src, dst),
                GgmlType::Q3_K => dq_blocks::<BlockQ3K>(src, dst),
                GgmlType::Q4_K => dq_blocks::<BlockQ4K>(src, dst),
                GgmlType::Q5_K => dq_blocks::<BlockQ5K>(src, dst),
                GgmlType::Q6_K => dq_blocks::<BlockQ6K>(src, dst),
                GgmlType::Q8_K => dq_blocks::<BlockQ8K>(src, dst),
            }
        }
    }

    /// Caller: AVX2/FMA/F16C present and `src` holds exactly `x.len()` elements.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_row(ty: GgmlType, src: &[u8], x: &[f32]) -> f32 {
        unsafe {
            match ty {
                GgmlType::F32 => dot_floats::<F32>(src, x),
                GgmlType::F16 => dot_floats::<F16>(src, x),
                GgmlType::BF16 => dot_floats::<Bf16>(src, x),
                GgmlType::Q4_0 => dot_blocks::<BlockQ4_0>(src, x),
                GgmlType::Q4_1 => dot_blocks::<BlockQ4_1>(src, x),
                GgmlType::Q5_0 => dot_blocks::<BlockQ5_0>(src, x),
                GgmlType::Q5_1 => dot_blocks::<BlockQ5_1>(src, x),
                GgmlType::Q8_0 => dot_blocks::<BlockQ8_0>(src, x),
                GgmlType::Q8_1 => dot_blocks::<BlockQ8_1>(src, x),
                GgmlType::Q2_K => dot_blocks::<BlockQ2K>(src, x),
                GgmlType::Q3_K => dot_blocks::<BlockQ3K>(src, x),
                GgmlType::Q4_K => dot_blocks::<BlockQ4K>(src, x),
                GgmlType::Q5_K => dot_blocks::<BlockQ5K>(src, x),
                GgmlType::Q6_K => dot_blocks::<BlockQ6K>(src, x),
                GgmlType::Q8_K => dot_blocks::<BlockQ8K>(src, x),
            }
        }
    }
}
