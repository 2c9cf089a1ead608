//! The fast paths are bit-identical to the scalar reference (q8 semantics) and agree with
//! it to f32 rounding (f32 dots).

mod common;

use common::Rng;
use graphrun::model::synth::{Rng as SRng, random_tensor};
use graphrun::quant::simd::{axpy_f32, dot_f32, has_avx2, vec_dot_q8_fast};
use graphrun::quant::{GgmlType, QuantAct, vec_dot_q8};

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
