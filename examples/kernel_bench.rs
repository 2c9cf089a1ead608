//! Single-thread throughput of the q8 matmul kernels on one weight matrix (cache-resident and
//! streamed), in weights per nanosecond. Run: `cargo run --release --example kernel_bench`.
use graphrun::model::synth::{Rng, random_tensor};
use graphrun::quant::simd::matmul_rows_q8;
use graphrun::quant::{GgmlType, QuantAct};
use std::time::Instant;

fn main() {
    let mut rng = Rng::new(1);
    for (ty, rows, k) in [
        (GgmlType::Q5_0, 4864usize, 896usize),
        (GgmlType::Q5_0, 151936, 896),
        (GgmlType::Q8_0, 4864, 896),
        (GgmlType::Q4_K, 896, 4864),
        (GgmlType::Q6_K, 896, 4864),
    ] {
        let w = random_tensor(ty, (rows * k) as u64, 0.02, &mut rng);
        let rb = w.len() / rows;
        for t in [1usize, 8] {
            let acts: Vec<QuantAct> = (0..t)
                .map(|_| {
                    QuantAct::for_weight(ty, &(0..k).map(|_| rng.uniform()).collect::<Vec<_>>())
                        .unwrap()
                })
                .collect();
            let mut out = vec![0.0; rows * t];
            let reps = 20;
            matmul_rows_q8(ty, &w, rb, &acts, &mut out);
            let t0 = Instant::now();
            for _ in 0..reps {
                matmul_rows_q8(ty, &w, rb, &acts, &mut out);
            }
            let ns = t0.elapsed().as_nanos() as f64 / reps as f64;
            println!(
                "{ty} {rows}x{k} T={t}: {:.2} weight-MACs/ns, {:.2} GB/s of weights",
                (rows * k * t) as f64 / ns,
                w.len() as f64 / ns
            );
        }
    }
}
