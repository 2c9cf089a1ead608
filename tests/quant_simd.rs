//! The fast paths are bit-identical to the scalar reference (q8 semantics; f32 dequantization
//! and the fused f32 row dot) and agree with it to f32 rounding (f32 dots).

mod common;

use common::Rng;
use graphrun::model::synth::{Rng as SRng, random_tensor};
use graphrun::quant::simd::{axpy_f32, dot_f32, has_avx2, vec_dot_q8_fast};
use graphrun::quant::simd_dequant::{dequantize_row_fast, dot_row_f32};
use graphrun::quant::{GgmlType, QuantAct, dequantize_row, vec_dot_q8};

#[test]
fn q8_fast_paths_are_bit_identical_to_the_reference() {
    if !has_avx2() {
        eprintln!("SKIP: no AVX2 on this CPU; the fast path is the reference itself");
        return;
    }
    let mut rng = Rng(3);
    let mut srng = SRng::new(11);
    for ty in [
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        for n in [256usize, 896, 4864] {
            if !(n as u64).is_multiple_of(ty.block_elems() as u64) {
                continue;
            }
            for _ in 0..50 {
                let row = random_tensor(ty, n as u64, 0.05, &mut srng);
                // Activations with outliers and exact zeros (empty blocks) mixed in.
                let x: Vec<f32> = (0..n)
                    .map(|i| {
                        if i % 97 == 0 {
                            0.0
                        } else {
                            rng.normal() * if i % 31 == 0 { 20.0 } else { 1.0 }
                        }
                    })
                    .collect();
                let act = QuantAct::for_weight(ty, &x).unwrap();
                let (fast, slow) = (vec_dot_q8_fast(ty, &row, &act), vec_dot_q8(ty, &row, &act));
                assert_eq!(
                    fast.to_bits(),
                    slow.to_bits(),
                    "{ty} n={n}: fast {fast} vs reference {slow}"
                );
            }
        }
    }
}

#[test]
fn f32_dot_and_axpy_agree_with_scalar_sums() {
    let mut rng = Rng(5);
    for n in [1usize, 7, 8, 31, 64, 896, 4865] {
        let a: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let scale: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        let got = dot_f32(&a, &b) as f64;
        assert!(
            (got - exact).abs() <= 1e-6 * scale,
            "n={n}: {got} vs {exact}"
        );
        let mut y = b.clone();
        axpy_f32(&mut y, 0.5, &a);
        for i in 0..n {
            assert!((y[i] - (b[i] + 0.5 * a[i])).abs() <= 1e-6 * (b[i].abs() + a[i].abs()));
        }
    }
}

#[test]
fn tiled_matmul_rows_are_bit_identical_to_pairwise_reference() {
    let mut rng = Rng(9);
    let mut srng = SRng::new(17);
    for ty in [
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::Q4_0,
        GgmlType::Q3_K,
    ] {
        let k = 512usize;
        // Row and activation counts that exercise full tiles and remainders.
        for (n_rows, t) in [(19usize, 1usize), (16, 1), (7, 5), (10, 8), (3, 3)] {
            let rows = random_tensor(ty, (n_rows * k) as u64, 0.05, &mut srng);
            let rb = rows.len() / n_rows;
            let acts: Vec<QuantAct> = (0..t)
                .map(|_| {
                    QuantAct::for_weight(ty, &(0..k).map(|_| rng.normal()).collect::<Vec<_>>())
                        .unwrap()
                })
                .collect();
            let mut out = vec![f32::NAN; n_rows * t];
            graphrun::quant::simd::matmul_rows_q8(ty, &rows, rb, &acts, &mut out);
            for i in 0..n_rows {
                for (c, a) in acts.iter().enumerate() {
                    let want = vec_dot_q8(ty, &rows[i * rb..(i + 1) * rb], a);
                    let got = out[i * t + c];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{ty} rows={n_rows} t={t} ({i},{c}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// Byte offsets of the scale fields of one block (fp16, except Q8_K's f32 `d`).
fn scale_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::Q8_1 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// fp16 scales at the edges: zeros, subnormals, the largest finite, infinities, NaNs.
const EDGE_F16: [u16; 11] = [
    0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00,
];
const FINITE_F16: [u16; 7] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x3C00];

/// Rows of `n` elements of `ty`: realistic random blocks, fully random bytes (any scale
/// bits, any quant bits), and blocks whose scales take every edge value.
fn test_rows(ty: GgmlType, n: usize, srng: &mut SRng) -> Vec<Vec<u8>> {
    let mut rows: Vec<Vec<u8>> = (0..4)
        .map(|_| random_tensor(ty, n as u64, 0.05, srng))
        .collect();
    let bytes = ty.bytes_for(n as u64).unwrap() as usize;
    for _ in 0..4 {
        let mut r = vec![0u8; bytes];
        srng.fill(&mut r);
        rows.push(r);
    }
    let bs = ty.block_bytes();
    for (e, &h) in EDGE_F16.iter().enumerate() {
        let mut r = random_tensor(ty, n as u64, 0.05, srng);
        for (b, blk) in r.chunks_exact_mut(bs).enumerate() {
            for (k, &off) in scale_fields(ty).iter().enumerate() {
                // Block 0 takes the edge value, the others a mix of the finite ones.
                let v = if b == 0 {
                    h
                } else {
                    FINITE_F16[(e + b + 3 * k) % FINITE_F16.len()]
                };
                blk[off..off + 2].copy_from_slice(&v.to_le_bytes());
            }
            if ty == GgmlType::Q8_K {
                let d = if b == 0 {
                    [0.0f32, -0.0, 1e-40, f32::MAX, f32::INFINITY, f32::NAN][e % 6]
                } else {
                    [0.0f32, 1e-40, 65504.0, 1.0][(e + b) % 4]
                };
                blk[0..4].copy_from_slice(&d.to_le_bytes());
            }
        }
        rows.push(r);
    }
    rows
}

/// Same bits, or NaN on both sides. Which NaN an add, multiply or FMA with two NaN
/// operands passes on depends on the operand order the compiler picks for these
/// commutative operations (LLVM treats NaN payloads as unspecified), so the reference's own
/// NaN bits may change from one build to the next; NaN appears only with non-finite scales
/// (or NaN activations), never with the finite scales of real files.
fn same(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

#[test]
fn f32_dequantization_and_row_dot_are_bit_identical_to_the_reference() {
    let mut rng = Rng(21);
    let mut srng = SRng::new(23);
    let (mut dots, mut nan_dots, mut values, mut finite) = (0usize, 0usize, 0usize, 0usize);
    for ty in GgmlType::ALL {
        let be = ty.block_elems();
        let lens: Vec<usize> = if be == 1 {
            vec![1, 7, 8, 9, 31, 32, 33, 40, 100, 896]
        } else {
            vec![be, 2 * be, 7 * be, 4864usize.next_multiple_of(be)]
        };
        for n in lens {
            for (k, row) in test_rows(ty, n, &mut srng).iter().enumerate() {
                let mut want = vec![0.0f32; n];
                dequantize_row(ty, row, &mut want);
                let mut got = vec![f32::NAN; n];
                dequantize_row_fast(ty, row, &mut got);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(same(g, w), "{ty} n={n} row {k} element {i}: {g} vs {w}");
                }
                finite += want.iter().filter(|v| !v.is_nan()).count();
                values += n;
                // Activations with exact zeros and outliers mixed in.
                let x: Vec<f32> = (0..n)
                    .map(|i| match i % 13 {
                        0 => 0.0,
                        5 => rng.normal() * 300.0,
                        _ => rng.normal(),
                    })
                    .collect();
                let (got, want) = (dot_row_f32(ty, row, &x), dot_f32(&want, &x));
                assert!(
                    same(got, want),
                    "{ty} n={n} row {k}: fused dot {got} vs dequantize + dot_f32 {want}"
                );
                nan_dots += usize::from(want.is_nan());
                dots += 1;
            }
        }
    }
    // Most values and sums are not NaN, so the bit-for-bit comparison is what is exercised.
    assert!(nan_dots * 2 < dots, "{nan_dots} of {dots} sums are NaN");
    assert!(
        finite * 10 > values * 9,
        "{finite} of {values} values are not NaN"
    );
}

#[test]
fn f16_widening_is_exact_for_every_bit_pattern() {
    let all: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    for ty in [GgmlType::F16, GgmlType::BF16] {
        let (mut want, mut got) = (vec![0.0f32; 65536], vec![0.0f32; 65536]);
        dequantize_row(ty, &all, &mut want);
        dequantize_row_fast(ty, &all, &mut got);
        // Pure widening, no arithmetic: NaNs keep their payloads, so every bit matches.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{ty} bits {i:#06x}: {g} vs {w}");
        }
    }
}
