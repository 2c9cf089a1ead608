//! The tiled q8 matmul of `matmul_rows_q8` on AVX2: legacy types in tiles of weight rows ×
//! activation rows whose integer dots are reduced eight at a time, k-quants one weight row
//! against all activation rows; every sum combined as the scalar reference combines it.

use super::{bits_to_bytes, h2f, hsum_i32, load32, nibbles, q6_k_runs};
use crate::quant::blocks::{BlockQ4K, BlockQ6K, BlockQ8_0, BlockQ8K, k_scale_min};
use crate::quant::dot::{KSums, QuantAct};
use crate::quant::simd::vec_dot_q8_fast;
use crate::quant::types::GgmlType;
use bytemuck::cast_slice;
use std::arch::x86_64::*;

/// Lane i of the result = Σ of the 8 lanes of v[i] (exact integer adds).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8(v: &[__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(v[0], v[1]);
    let s23 = _mm256_hadd_epi32(v[2], v[3]);
    let s45 = _mm256_hadd_epi32(v[4], v[5]);
    let s67 = _mm256_hadd_epi32(v[6], v[7]);
    let t0 = _mm256_hadd_epi32(s01, s23);
    let t1 = _mm256_hadd_epi32(s45, s67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(t0, t1),
        _mm256_permute2x128_si256::<0x31>(t0, t1),
    )
}

/// A legacy 32-element weight block as 32 signed bytes, and its fp16 scale.
trait Legacy {
    const BYTES: usize;
    unsafe fn unpack(p: *const u8) -> __m256i;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scale(p: *const u8) -> f32 {
        unsafe { h2f([*p, *p.add(1)]) }
    }
}
struct Q5_0;
impl Legacy for Q5_0 {
    const BYTES: usize = 22;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> __m256i {
        unsafe {
            let q = nibbles(p.add(6));
            let qh = u32::from_le_bytes([*p.add(2), *p.add(3), *p.add(4), *p.add(5)]);
            let high = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
            _mm256_sub_epi8(_mm256_or_si256(q, high), _mm256_set1_epi8(16))
        }
    }
}
struct Q8_0;
impl Legacy for Q8_0 {
    const BYTES: usize = 34;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> __m256i {
        unsafe { load32(p.add(2)) }
    }
}

/// R weight rows × C activation rows (R·C = 8) of a legacy type: per block, the 8 integer
/// dots are reduced together and combined as the reference does:
/// `acc += (d_w·d_a) · (sumi as f32)` with separate multiply and add roundings.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_legacy<L: Legacy, const R: usize, const C: usize>(
    w: [&[u8]; R],
    a: [&[BlockQ8_0]; C],
    ahead: &[u8],
) -> [f32; 8] {
    let nb = a[0].len();
    assert!(a.iter().all(|x| x.len() == nb) && w.iter().all(|x| x.len() >= nb * L::BYTES));
    let mut acc = _mm256_setzero_ps();
    let ones = _mm256_set1_epi16(1);
    // Streaming from DRAM, the hardware prefetcher does not keep up with 8 interleaved
    // row streams: touch the next tile's bytes (`ahead`) a few cache lines per block.
    let lines = ahead.len().div_ceil(64);
    let per_block = lines.div_ceil(nb.max(1));
    for b in 0..nb {
        for k in 0..per_block {
            let off = (b * per_block + k) * 64;
            if off < ahead.len() {
                unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.as_ptr().add(off) as *const i8) };
            }
        }
        let mut v = [_mm256_setzero_si256(); 8];
        let mut d = [0.0f32; 8];
        // Activation blocks: loaded and their scales converted once per block.
        let mut ys = [_mm256_setzero_si256(); C];
        let mut da = [0.0f32; C];
        for c in 0..C {
            let blk = unsafe { a[c].get_unchecked(b) };
            ys[c] = unsafe { load32(blk.qs.as_ptr() as *const u8) };
            da[c] = h2f(blk.d);
        }
        for r in 0..R {
            let p = unsafe { w[r].as_ptr().add(b * L::BYTES) };
            let wv = unsafe { L::unpack(p) };
            let wa = _mm256_sign_epi8(wv, wv);
            let dw = unsafe { L::scale(p) };
            for c in 0..C {
                v[r * C + c] =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(ys[c], wv)), ones);
                d[r * C + c] = dw * da[c];
            }
        }
        let s = _mm256_cvtepi32_ps(reduce8(&v));
        let dv = _mm256_setr_ps(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
        let prod = _mm256_mul_ps(dv, s);
        acc = _mm256_add_ps(acc, prod);
    }
    let mut out = [0.0f32; 8];
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
    out
}

/// Runs a legacy type over all (row, t) pairs in tiles: blocks of 8 weight rows, within
/// a block the activation rows four at a time (2×4 tiles), then a pair (4×2), then a
/// single one (8×1), so each weight block is unpacked once per 4, 2 or 1 activation
/// rows while the 8 rows stay in L1; the last n mod 8 rows go pair by pair.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn legacy_rows<L: Legacy>(
    w: GgmlType,
    rows: &[u8],
    rb: usize,
    acts: &[&[BlockQ8_0]],
    all: &[QuantAct],
    out: &mut [f32],
) {
    let (n, t) = (rows.len() / rb, acts.len());
    let row = |i: usize| &rows[i * rb..(i + 1) * rb];
    let mut i = 0;
    while i + 8 <= n {
        // The next block's bytes, touched while this one is computed (see tile_legacy).
        let next = &rows[((i + 8) * rb).min(rows.len())..((i + 16) * rb).min(rows.len())];
        let mut c = 0;
        while c < t {
            let a = |k: usize| acts[c + k];
            match t - c {
                4.. => {
                    for h in 0..4 {
                        let ahead = if h == 0 { next } else { &[] };
                        let (r0, r1) = (i + 2 * h, i + 2 * h + 1);
                        let r = unsafe {
                            tile_legacy::<L, 2, 4>(
                                [row(r0), row(r1)],
                                [a(0), a(1), a(2), a(3)],
                                ahead,
                            )
                        };
                        for k in 0..4 {
                            out[r0 * t + c + k] = r[k];
                            out[r1 * t + c + k] = r[4 + k];
                        }
                    }
                    c += 4;
                }
                2 | 3 => {
                    for h in 0..2 {
                        let ahead = if h == 0 { next } else { &[] };
                        let rs: [&[u8]; 4] = std::array::from_fn(|k| row(i + 4 * h + k));
                        let r = unsafe { tile_legacy::<L, 4, 2>(rs, [a(0), a(1)], ahead) };
                        for k in 0..4 {
                            out[(i + 4 * h + k) * t + c] = r[2 * k];
                            out[(i + 4 * h + k) * t + c + 1] = r[2 * k + 1];
                        }
                    }
                    c += 2;
                }
                _ => {
                    let rs: [&[u8]; 8] = std::array::from_fn(|k| row(i + k));
                    let r = unsafe { tile_legacy::<L, 8, 1>(rs, [a(0)], next) };
                    for k in 0..8 {
                        out[(i + k) * t + c] = r[k];
                    }
                    c += 1;
                }
            }
        }
        i += 8;
    }
    for i in i..n {
        for c in 0..t {
            out[i * t + c] = vec_dot_q8_fast(w, row(i), &all[c]);
        }
    }
}

/// One row of a k-quant against T activation rows: each super-block is unpacked once
/// and its integer sums formed per activation row, combined as `kquant` does.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn kquant_rows<B: bytemuck::Pod>(
    rows: &[u8],
    rb: usize,
    acts: &[&[BlockQ8K]],
    out: &mut [f32],
    f: unsafe fn(&B, &[&[BlockQ8K]], usize, &mut [KSums]),
) {
    let t = acts.len();
    let mut ks: Vec<KSums> = (0..t)
        .map(|_| KSums {
            d: 0.0,
            isum: 0,
            dmin: 0.0,
            msum: 0,
        })
        .collect();
    for (i, o) in out.chunks_exact_mut(t).enumerate() {
        let blocks: &[B] = cast_slice(&rows[i * rb..(i + 1) * rb]);
        let next = &rows[((i + 1) * rb).min(rows.len())..((i + 2) * rb).min(rows.len())];
        let per_block = next.len().div_ceil(64).div_ceil(blocks.len().max(1));
        o.fill(0.0);
        for (b, blk) in blocks.iter().enumerate() {
            // Prefetch the next row while this one is computed (see tile_legacy).
            for k in 0..per_block {
                let off = (b * per_block + k) * 64;
                if off < next.len() {
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(next.as_ptr().add(off) as *const i8) };
                }
            }
            unsafe { f(blk, acts, b, &mut ks) };
            for ((y, k), a) in o.iter_mut().zip(&ks).zip(acts) {
                let da = a[b].d();
                *y += (k.d * da) * k.isum as f32;
                *y -= (k.dmin * da) * k.msum as f32;
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_multi(b: &BlockQ4K, acts: &[&[BlockQ8K]], blk: usize, out: &mut [KSums]) {
    let mut w = [_mm256_setzero_si256(); 8];
    let mut sc = [0i16; 8];
    let mut mn = [0i32; 8];
    for k in 0..4 {
        let q = unsafe { load32(b.qs.as_ptr().add(32 * k)) };
        w[2 * k] = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
        w[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(q), _mm256_set1_epi8(0x0F));
    }
    for g in 0..8 {
        let (s, m) = k_scale_min(&b.scales, g);
        sc[g] = s as i16;
        mn[g] = m as i32;
    }
    let (d, dmin) = (h2f(b.d), h2f(b.dmin));
    for (a, o) in acts.iter().zip(out.iter_mut()) {
        let a = &a[blk];
        let mut acc = _mm256_setzero_si256();
        let mut msum = 0;
        for g in 0..8 {
            let y = unsafe { load32(a.qs.as_ptr().add(32 * g) as *const u8) };
            acc = _mm256_add_epi32(
                acc,
                _mm256_madd_epi16(_mm256_maddubs_epi16(w[g], y), _mm256_set1_epi16(sc[g])),
            );
            msum += mn[g] * (a.bsum(2 * g) + a.bsum(2 * g + 1));
        }
        *o = KSums {
            d,
            isum: hsum_i32(acc),
            dmin,
            msum,
        };
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_multi(b: &BlockQ6K, acts: &[&[BlockQ8K]], blk: usize, out: &mut [KSums]) {
    let (w, sc) = unsafe { q6_k_runs(b) };
    let d = h2f(b.d);
    for (a, o) in acts.iter().zip(out.iter_mut()) {
        let a = &a[blk];
        let mut acc = _mm256_setzero_si256();
        for g in 0..8 {
            let y = unsafe { load32(a.qs.as_ptr().add(32 * g) as *const u8) };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w[g], y), sc[g]));
        }
        let corr: i32 = (0..16).map(|g| b.scales[g] as i32 * a.bsum(g)).sum();
        *o = KSums {
            d,
            isum: hsum_i32(acc) - 32 * corr,
            dmin: 0.0,
            msum: 0,
        };
    }
}

/// Tiled matmul for the hot types; false when `w` has no tiled kernel.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul_rows(
    w: GgmlType,
    rows: &[u8],
    rb: usize,
    acts: &[QuantAct],
    out: &mut [f32],
) -> bool {
    let q8_0: Option<Vec<&[BlockQ8_0]>> = acts
        .iter()
        .map(|a| {
            if let QuantAct::Q8_0(b) = a {
                Some(b.as_slice())
            } else {
                None
            }
        })
        .collect();
    let q8_k: Option<Vec<&[BlockQ8K]>> = acts
        .iter()
        .map(|a| {
            if let QuantAct::Q8K(b) = a {
                Some(b.as_slice())
            } else {
                None
            }
        })
        .collect();
    unsafe {
        match (w, q8_0, q8_k) {
            (GgmlType::Q5_0, Some(a), _) => legacy_rows::<Q5_0>(w, rows, rb, &a, acts, out),
            (GgmlType::Q8_0, Some(a), _) => legacy_rows::<Q8_0>(w, rows, rb, &a, acts, out),
            (GgmlType::Q4_K, _, Some(a)) => kquant_rows::<BlockQ4K>(rows, rb, &a, out, q4_k_multi),
            (GgmlType::Q6_K, _, Some(a)) => kquant_rows::<BlockQ6K>(rows, rb, &a, out, q6_k_multi),
            _ => return false,
        }
    }
    true
}
