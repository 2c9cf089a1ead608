//! The device sampler (kernels/argmax.cu `sample`, the tail of the captured decode step
//! that `graphrun run --temp T` takes on the GPU) against the host's `sample::sample`: for
//! the same logits (the step's, as the device left them) and the same draw, every step of
//! every configuration picks the host's token; the gate sends top-k 0 and top-k above
//! SAMPLE_MAX_K to the host; and the draws do leave the argmax (the test samples, it does
//! not decode greedily). Synthetic presets with a 151,936-token vocabulary (38 sampler CTAs)
//! and the tiny one. The sampler alone (`sample_row`) on crafted rows: lengths around its
//! 4,096-logit CTA slice, ties broken by id, all equal, signed zeros at the top, huge and
//! subnormal values. GPU-only: `#[ignore]`d, run with `--ignored` on the device.

mod common;

use graphrun::exec::cuda::CudaEngine;
use graphrun::exec::{Engine, NoObserver};
use graphrun::generate::{Sampler, SamplerConfig, sample};
use graphrun::graph::ActSemantics;
use graphrun::model::ModelFile;
use graphrun::model::synth::Rng;
use graphrun::numerics::argmax;

const STEPS: usize = 48;

/// The fused decode engine on `m` with an f16 cache.
fn engine(m: &ModelFile, act: ActSemantics, n_ctx: usize) -> CudaEngine<'_> {
    common::fused_f16_engine(m, act, n_ctx)
}

fn cfg(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature,
        top_k,
        top_p,
        seed,
    }
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device"]
fn device_sampler_picks_the_host_samplers_token() {
    common::require_gpu("gpu_sample");
    let configs = [
        cfg(0.7, 40, 0.9, 1),
        cfg(1.0, 64, 1.0, 2),
        cfg(1.5, 2, 0.95, 3),
        cfg(0.3, 10, 0.5, 4),
        cfg(2.0, 33, 0.999, 5),
    ];
    for preset in ["tiny", "0.5b", "1.5b"] {
        let m = common::tiny_model(preset, 3);
        for act in [ActSemantics::Q8, ActSemantics::F32] {
            let mut e = engine(&m, act, 256);
            let vocab = e.graph().node(e.graph().output()).width;
            assert!(
                !e.samples_on_device(&cfg(0.7, 0, 0.9, 1)),
                "top-k 0 samples on the host"
            );
            assert!(
                !e.samples_on_device(&cfg(0.7, 65, 0.9, 1)),
                "top-k 65 samples on the host"
            );
            assert!(
                !e.samples_on_device(&cfg(0.0, 40, 0.9, 1)),
                "greedy takes the argmax"
            );
            for c in &configs {
                assert!(
                    e.samples_on_device(c),
                    "{preset}: {c:?} should sample on the device"
                );
                e.reset();
                let prompt: Vec<u32> = (0..9).map(|k| (11 + 97 * k) % vocab as u32).collect();
                let mut tok = e.step_argmax(&prompt, &mut NoObserver).unwrap();
                let mut draws = Sampler::new(c.clone()).unwrap();
                let (mut off_argmax, mut distinct) = (0, std::collections::BTreeSet::new());
                for step in 0..STEPS {
                    let u = draws.draw();
                    let got = e
                        .step_sample(tok, c, u, &mut NoObserver)
                        .expect("the device path")
                        .unwrap();
                    let logits = e.last_logits(1).unwrap();
                    let want = sample(&logits, c, u);
                    assert_eq!(
                        got, want,
                        "{preset} {act:?} {c:?} step {step} draw {u}: device {got}, host {want}"
                    );
                    off_argmax += (got as usize != argmax(&logits)) as usize;
                    distinct.insert(got);
                    tok = got;
                }
                eprintln!(
                    "{preset} {act:?} T={} k={} p={}: {STEPS} steps, device = host at every step; {off_argmax} draws off the argmax, {} distinct tokens",
                    c.temperature,
                    c.top_k,
                    c.top_p,
                    distinct.len()
                );
                if c.temperature >= 1.0 {
                    assert!(off_argmax > 0, "{preset} {c:?}: every draw was the argmax");
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device"]
fn device_sampler_on_crafted_rows_picks_the_host_samplers_token() {
    common::require_gpu("gpu_sample");
    let m = common::tiny_model("0.5b", 3);
    let mut e = engine(&m, ActSemantics::Q8, 64);
    let vocab = e.graph().node(e.graph().output()).width;
    let mut rng = Rng::new(11);
    let mut normal = move || {
        let (a, b) = (
            (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
            (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
        );
        ((-2.0 * (a + 1e-300).ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
    };
    let configs = [
        cfg(0.8, 40, 0.95, 1),
        cfg(1.0, 64, 1.0, 2),
        cfg(0.5, 7, 0.6, 3),
    ];
    let mut checks = 0;
    for n in [64, 100, 4095, 4096, 4097, 12_345, vocab] {
        let random: Vec<f32> = (0..n).map(|_| 3.0 * normal()).collect();
        let ties: Vec<f32> = random.iter().map(|v| (v * 0.5).round()).collect();
        let equal = vec![0.25f32; n];
        let zeros: Vec<f32> = (0..n)
            .map(|i| match i % 3 {
                0 => -0.0,
                1 => 0.0,
                _ => -1.0 - (i % 7) as f32,
            })
            .collect();
        let extreme: Vec<f32> = random
            .iter()
            .enumerate()
            .map(|(i, v)| match i % 4 {
                0 => v * 1e30,
                1 => v * 1e-40,
                _ => *v,
            })
            .collect();
        for (name, row) in [
            ("random", &random),
            ("ties", &ties),
            ("equal", &equal),
            ("signed zeros", &zeros),
            ("extreme", &extreme),
        ] {
            for c in &configs {
                let mut draws = Sampler::new(c.clone()).unwrap();
                for _ in 0..8 {
                    let u = draws.draw();
                    let got = e.sample_row(row, c, u).unwrap();
                    let want = sample(row, c, u);
                    assert_eq!(
                        got, want,
                        "{name} n={n} {c:?} draw {u}: device {got}, host {want}"
                    );
                    checks += 1;
                }
            }
        }
    }
    eprintln!("crafted rows: {checks} draws, device = host at every one");
}
