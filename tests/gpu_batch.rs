//! Batched decode on the GPU (`CudaEngine::with_slots` as a `BatchEngine`, what `graphrun
//! serve --parallel N` runs): up to 8 sequences in their own KV-cache slots, at different
//! positions (prompts of 1 to 513 tokens: the prefill GEMM's tile edge and chunking), decoded
//! in one step, give each sequence bit for bit the logits it gets alone in a batched step of
//! one row and the logits the single-sequence engine (`graphrun run`'s fused decode) gives it
//! (the batched kernels sum each row in the single-row kernels' order) — for prompts of up
//! to 8 tokens (the engine's 8 slots), which join as one batched step of a row a token
//! where the single-sequence engine runs its prefill GEMM, the logits within the logits band
//! of that engine's; sequences join and
//! leave between steps without touching the others; and the batched logits agree with the
//! interpreter's within the logits band of contracts/trace_same_semantics.toml, greedy
//! tokens equal up to a near-tie. GPU-only:
//! `#[ignore]`d, run with `--ignored` on the device (scripts/gpu-check batch).

mod common;

use graphrun::codegen::catalogue::MATVEC_MAX_BATCH;
use graphrun::contracts;
use graphrun::diff;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::interp::Interpreter;
use graphrun::exec::{BatchEngine, Engine, NoObserver};
use graphrun::generate::{Sampler, SamplerConfig, sample};
use graphrun::graph::{ActSemantics, KvType, LowerOptions, lower};
use graphrun::metrics::nmse;
use graphrun::model::ModelFile;
use graphrun::numerics::argmax;

const LENGTHS: [usize; 8] = [1, 3, 7, 17, 33, 129, 200, 513];
const STEPS: usize = 12;
const N_CTX: usize = 1024;

fn prompt(i: usize, vocab: usize) -> Vec<u32> {
    (0..LENGTHS[i] as u32)
        .map(|k| (17 + 131 * k + 7 * i as u32) % vocab as u32)
        .collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn engine(m: &ModelFile, act: ActSemantics, slots: usize) -> CudaEngine<'_> {
    let g = lower(
        m,
        LowerOptions {
            act,
            kv: KvType::F16,
        },
    )
    .unwrap();
    let opts = CudaOptions {
        device: 0,
        n_ctx: N_CTX,
        fuse: true,
        max_logit_rows: 1,
        quiet: true,
    };
    CudaEngine::with_slots(m, g, &opts, slots).unwrap()
}

/// Sequence `i` alone in slot `slot`: its prefill logits, then STEPS greedy batched steps
/// of one row; the logits of every step.
fn alone(e: &mut CudaEngine, slot: usize, p: &[u32]) -> Vec<Vec<f32>> {
    let mut l = e.prefill(slot, p).unwrap();
    let mut out = vec![l.clone()];
    for _ in 0..STEPS {
        l = e.decode(&[(slot, argmax(&l) as u32)]).unwrap();
        out.push(l.clone());
    }
    e.release(slot);
    out
}

/// The eight `prompts` decoded together (sequence i in slot 7 − i) for STEPS greedy steps,
/// then each alone (in slot i), compared bit for bit (a failure per sequence that differs
/// pushed to `failures`); the logits of every step of each sequence, together.
fn together_and_alone(
    e: &mut CudaEngine,
    prompts: &[Vec<u32>],
    label: &str,
    failures: &mut Vec<String>,
) -> Vec<Vec<Vec<f32>>> {
    let vocab = e.graph().node(e.graph().output()).width;
    let mut logits: Vec<Vec<f32>> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| e.prefill(7 - i, p).unwrap())
        .collect();
    let mut together: Vec<Vec<Vec<f32>>> = logits.iter().map(|l| vec![l.clone()]).collect();
    for _ in 0..STEPS {
        let batch: Vec<(usize, u32)> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| (7 - i, argmax(l) as u32))
            .collect();
        let out = e.decode(&batch).unwrap();
        for (i, row) in out.chunks_exact(vocab).enumerate() {
            logits[i] = row.to_vec();
            together[i].push(row.to_vec());
        }
    }
    for s in 0..8 {
        e.release(s);
    }
    // Each alone (in another slot), bit for bit.
    for (i, p) in prompts.iter().enumerate() {
        let solo = alone(e, i, p);
        let same_bits = solo
            .iter()
            .zip(&together[i])
            .position(|(a, b)| bits(a) != bits(b));
        if let Some(k) = same_bits {
            failures.push(format!(
                "{label}: sequence {i} (T={}) step {k}: batched logits differ from the sequence alone (NMSE {:.3e})",
                p.len(),
                nmse(&together[i][k], &solo[k])
            ));
        }
    }
    together
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn batched_rows_equal_each_sequence_alone_and_the_interpreter() {
    common::require_gpu("gpu_batch");
    let same = contracts::load("trace_same_semantics").unwrap();
    let near_tie = common::near_tie();
    let mut failures = Vec::new();
    for preset in ["tiny-llama", "0.5b", "1.5b"] {
        let m = common::tiny_model(preset, 5);
        for act in [ActSemantics::Q8, ActSemantics::F32] {
            let label = format!("{preset} {}", act.name());
            let mut e = engine(&m, act, 8);
            let vocab = e.graph().node(e.graph().output()).width;
            let prompts: Vec<Vec<u32>> = (0..8).map(|i| prompt(i, vocab)).collect();
            let together = together_and_alone(&mut e, &prompts, &label, &mut failures);
            // The logits band of contracts/trace_same_semantics.toml (same semantics).
            let g = lower(
                &m,
                LowerOptions {
                    act,
                    kv: KvType::F16,
                },
            )
            .unwrap();
            let out_name = g.node(g.output()).name.clone();
            let classes = diff::classes(&out_name, "matmul", None, Some(&out_name));
            let band = diff::band(
                &same,
                [(act, KvType::F16), (act, KvType::F16)],
                &classes,
                false,
            )
            .unwrap();
            // The single-sequence engine (one slot: `graphrun run`'s fused decode), fed the
            // same tokens, gives the same bits at every step; after a prompt of up to 8
            // tokens (the batched engine's one-step join, the single engine's prefill GEMM)
            // the same logits within the band.
            let mut single = engine(&m, act, 1);
            for (i, p) in prompts.iter().enumerate() {
                let n = p.len();
                let mut got = vec![single.step(p, n - 1..n, &mut NoObserver).unwrap()];
                for l in &together[i][..STEPS] {
                    let tok = argmax(l) as u32;
                    got.push(single.step(&[tok], 0..1, &mut NoObserver).unwrap());
                }
                single.reset();
                if n <= MATVEC_MAX_BATCH as usize {
                    let worst = got
                        .iter()
                        .zip(&together[i])
                        .map(|(a, b)| nmse(b, a))
                        .fold(0.0f64, f64::max);
                    eprintln!(
                        "{label}: sequence {i} (T={n}, one-step join): logits NMSE vs the single-sequence engine worst {worst:.3e} (band {band:.1e})"
                    );
                    if worst.is_nan() || worst > band {
                        failures.push(format!(
                            "{label}: sequence {i} (T={n}): batched logits NMSE {worst:.3e} from the single-sequence engine > band {band:.1e}"
                        ));
                    }
                } else if let Some(k) = got
                    .iter()
                    .zip(&together[i])
                    .position(|(a, b)| bits(a) != bits(b))
                {
                    failures.push(format!(
                        "{label}: sequence {i} (T={n}) step {k}: batched logits differ from the single-sequence engine (NMSE {:.3e})",
                        nmse(&together[i][k], &got[k])
                    ));
                }
            }
            drop(single);
            // Against the interpreter: two sequences (the shortest and the chunked one).
            for i in [0, 7] {
                let mut cpu = Interpreter::new(&m, g.clone(), N_CTX).unwrap();
                let p = &prompts[i];
                let n = p.len();
                let mut l = cpu.step(p, n - 1..n, &mut NoObserver).unwrap();
                let (mut want, mut margins, mut worst) = (Vec::new(), Vec::new(), 0.0f64);
                let mut got = Vec::new();
                for k in 0..=STEPS {
                    let e_k = nmse(&together[i][k], &l);
                    worst = worst.max(e_k);
                    let (t, margin) = common::top1_margin(&l);
                    margins.push(margin);
                    want.push(t as u32);
                    got.push(argmax(&together[i][k]) as u32);
                    if k < STEPS {
                        // Teacher-forced with the GPU's token, so the rows stay comparable.
                        l = cpu.step(&[got[k]], 0..1, &mut NoObserver).unwrap();
                    }
                }
                eprintln!(
                    "{label}: sequence {i} (T={n}): logits NMSE vs interpreter worst {worst:.3e} (band {band:.1e}); tokens gpu {got:?} interp {want:?}"
                );
                if worst.is_nan() || worst > band {
                    failures.push(format!(
                        "{label}: sequence {i}: logits NMSE {worst:.3e} > band {band:.1e}"
                    ));
                }
                if let Some(f) = common::tokens_agree(&got, &want, &margins, near_tie) {
                    failures.push(format!("{label}: sequence {i}: {f}"));
                }
            }
            // The single-sequence path (fused decode, captured graph) still runs in slot 0.
            let p = &prompts[2];
            let (t1, _) = common::greedy(&mut e, p, 4, &mut NoObserver, false).unwrap();
            eprintln!("{label}: single-sequence decode after batching: {t1:?}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The 7B's shapes (GRAPHRUN_BATCH_WIDE_PRESETS: others), q8: its down projection's rows
/// (K = 18,944) are too long for the batched staging rule, and from 4 rows on a GPU with
/// the shared memory (the H200's 227 KB a CTA) stages them in wide CTAs
/// (`batch_matvec_wide`); every row still gets the bits it gets alone. Prompts of 1 to 513
/// tokens as above; the interpreter's check is the test above's, on the smaller presets.
#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn wide_staged_rows_equal_each_sequence_alone() {
    common::require_gpu("gpu_batch");
    let presets = std::env::var("GRAPHRUN_BATCH_WIDE_PRESETS").unwrap_or_else(|_| "7b".into());
    let mut failures = Vec::new();
    for preset in presets.split(',') {
        let m = common::tiny_model(preset, 5);
        let mut e = engine(&m, ActSemantics::Q8, 8);
        let vocab = e.graph().node(e.graph().output()).width;
        let prompts: Vec<Vec<u32>> = (0..8).map(|i| prompt(i, vocab)).collect();
        together_and_alone(&mut e, &prompts, &format!("{preset} q8"), &mut failures);
        eprintln!("{preset} q8: 8 sequences together and each alone compared");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn sequences_join_and_leave_between_steps_without_touching_the_others() {
    common::require_gpu("gpu_batch");
    let m = common::tiny_model("0.5b", 9);
    let mut e = engine(&m, ActSemantics::Q8, 4);
    let vocab = e.graph().node(e.graph().output()).width;
    let p: Vec<Vec<u32>> = (0..5).map(|i| prompt(i, vocab)).collect();
    let solo: Vec<Vec<Vec<f32>>> = (0..5).map(|i| alone(&mut e, i % 4, &p[i])).collect();
    // Slots 0..3 run sequences 0..3; sequence 1 leaves after 4 steps and sequence 4 takes
    // its slot; sequence 2 joins only at step 3.
    let mut step = [0usize; 5];
    let mut last: Vec<Option<Vec<f32>>> = vec![None; 5];
    let mut slot_of = [0, 1, 2, 3, 1];
    for i in [0, 1, 3] {
        last[i] = Some(e.prefill(slot_of[i], &p[i]).unwrap());
    }
    for s in 0..STEPS {
        if s == 3 {
            last[2] = Some(e.prefill(slot_of[2], &p[2]).unwrap());
        }
        if s == 4 {
            e.release(1);
            last[1] = None;
            slot_of[4] = 1;
            last[4] = Some(e.prefill(1, &p[4]).unwrap());
        }
        let live: Vec<usize> = (0..5)
            .filter(|&i| last[i].is_some() && step[i] < STEPS)
            .collect();
        let batch: Vec<(usize, u32)> = live
            .iter()
            .map(|&i| (slot_of[i], argmax(last[i].as_ref().unwrap()) as u32))
            .collect();
        let out = e.decode(&batch).unwrap();
        for (k, &i) in live.iter().enumerate() {
            let row = out[k * vocab..(k + 1) * vocab].to_vec();
            step[i] += 1;
            assert_eq!(
                bits(&row),
                bits(&solo[i][step[i]]),
                "sequence {i} at its step {} (batch of {})",
                step[i],
                batch.len()
            );
            last[i] = Some(row);
        }
    }
    // Bad batches are errors, not wrong answers.
    assert!(e.decode(&[(0, 1), (0, 2)]).is_err());
    assert!(e.decode(&[(9, 1)]).is_err());
    e.release(3);
    assert!(e.decode(&[(3, 1)]).is_err());
    assert!(e.decode(&[(0, vocab as u32 + 5)]).is_err());
}

/// `decode_sample` (what `serve` takes when any request samples): every row's token, drawn
/// on the device with its own configuration and draw (greedy rows by top-k 1), equals the
/// host's `sample::sample` of that row's logits with the same draw; a batch holding a
/// configuration the device sampler does not take (top-k 0) samples on the host, the same
/// way. 8 and then 3 sequences of the 0.5B preset, 12 steps each.
#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn batched_sampling_picks_the_host_samplers_tokens() {
    common::require_gpu("gpu_batch");
    let m = common::tiny_model("0.5b", 3);
    let mut e = engine(&m, ActSemantics::Q8, 8);
    let vocab = e.graph().node(e.graph().output()).width;
    let cfg = |temperature: f32, top_k: usize, top_p: f32, seed: u64| SamplerConfig {
        temperature,
        top_k,
        top_p,
        seed,
    };
    let all = [
        cfg(0.7, 40, 0.9, 1),
        cfg(0.0, 40, 0.9, 2),
        cfg(1.3, 64, 1.0, 3),
        cfg(0.5, 2, 0.95, 4),
        cfg(1.0, 1, 0.9, 5),
        cfg(2.0, 17, 0.99, 6),
        cfg(0.9, 40, 0.0, 7),
        cfg(0.8, 33, 0.8, 8),
    ];
    let mut host_rows = 0;
    for (n, top_k0) in [(8, false), (3, false), (4, true)] {
        let mut configs: Vec<SamplerConfig> = all[..n].to_vec();
        if top_k0 {
            configs[1] = cfg(0.7, 0, 0.9, 9); // every token: the host samples this batch
        }
        let mut samplers: Vec<Sampler> = configs
            .iter()
            .map(|c| Sampler::new(c.clone()).unwrap())
            .collect();
        let mut next: Vec<u32> = (0..n)
            .map(|s| argmax(&e.prefill(s, &prompt(s, vocab)).unwrap()) as u32)
            .collect();
        for step in 0..STEPS {
            let batch: Vec<(usize, u32)> = next.iter().enumerate().map(|(s, &t)| (s, t)).collect();
            let picks: Vec<(SamplerConfig, f64)> = samplers
                .iter_mut()
                .map(|s| {
                    let u = if s.is_greedy() { 0.0 } else { s.draw() };
                    (s.config().clone(), u)
                })
                .collect();
            let got = e.decode_sample(&batch, &picks).unwrap();
            let logits = e.last_logits(n).unwrap();
            for (s, row) in logits.chunks_exact(vocab).enumerate() {
                let want = sample(row, &picks[s].0, picks[s].1);
                assert_eq!(
                    got[s], want,
                    "{n} rows, step {step}, slot {s} {:?} draw {}",
                    picks[s].0, picks[s].1
                );
            }
            host_rows += top_k0 as usize * n;
            next = got;
        }
        for s in 0..n {
            e.release(s);
        }
    }
    eprintln!(
        "batched sampling: {} rows device = host (and {host_rows} in host-sampled batches)",
        STEPS * 11
    );
}

/// The batched greedy step (`decode_greedy`: one argmax launch for all rows, a grid layer
/// and a scratch area a row) gives each row the argmax of its logits (the host's, lowest id
/// on ties), with 8, 5, 2 and 1 rows, 12 steps each, on the 0.5B preset.
#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn batched_greedy_tokens_are_each_rows_argmax() {
    common::require_gpu("gpu_batch");
    let m = common::tiny_model("0.5b", 3);
    let mut e = engine(&m, ActSemantics::Q8, 8);
    let vocab = e.graph().node(e.graph().output()).width;
    let mut rows = 0;
    for n in [8, 5, 2, 1] {
        let mut next: Vec<u32> = (0..n)
            .map(|s| {
                argmax(
                    &e.prefill(s, &prompt((s + n) % LENGTHS.len(), vocab))
                        .unwrap(),
                ) as u32
            })
            .collect();
        for step in 0..STEPS {
            let batch: Vec<(usize, u32)> = next.iter().enumerate().map(|(s, &t)| (s, t)).collect();
            let got = e.decode_greedy(&batch).unwrap();
            let logits = e.last_logits(n).unwrap();
            let want: Vec<u32> = logits
                .chunks_exact(vocab)
                .map(|r| argmax(r) as u32)
                .collect();
            assert_eq!(got, want, "{n} rows, step {step}");
            rows += n;
            next = got;
        }
        for s in 0..n {
            e.release(s);
        }
    }
    eprintln!("batched greedy: {rows} rows, each its logits' argmax");
}

/// Not a pass/fail check: the wall time of a batched step (kernels, logits readback) at
/// 1 to 8 rows on the 1.5B shapes (GRAPHRUN_BATCH_PRESETS: others), so the server's
/// aggregate rate (scripts/gpu-check servebench) can be split into the engine's step and
/// the server's own time. Each sequence has a 64-token prompt; 8 warm-up steps, then the
/// median of 32. GRAPHRUN_BATCH_SIZES (default 1,2,4,8) picks the batch sizes, so a
/// profiler can be pointed at one of them.
#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check batch)"]
fn batched_step_time_by_batch_size() {
    common::require_gpu("gpu_batch");
    let presets = std::env::var("GRAPHRUN_BATCH_PRESETS").unwrap_or_else(|_| "1.5b".into());
    for preset in presets.split(',') {
        let m = common::tiny_model(preset, 3);
        let mut e = engine(&m, ActSemantics::Q8, 8);
        let vocab = e.graph().node(e.graph().output()).width;
        let sizes = std::env::var("GRAPHRUN_BATCH_SIZES").unwrap_or_else(|_| "1,2,4,8".into());
        for b in sizes.split(',').map(|b| {
            b.trim()
                .parse::<usize>()
                .expect("GRAPHRUN_BATCH_SIZES: batch sizes 1 to 8")
        }) {
            let mut last: Vec<u32> = (0..b)
                .map(|s| {
                    let p: Vec<u32> = (0..64).map(|k| (5 + 37 * k + s as u32) % 1000).collect();
                    argmax(&e.prefill(s, &p).unwrap()) as u32
                })
                .collect();
            let mut times = Vec::new();
            for k in 0..40 {
                let batch: Vec<(usize, u32)> =
                    last.iter().enumerate().map(|(s, &t)| (s, t)).collect();
                let t0 = std::time::Instant::now();
                let out = e.decode(&batch).unwrap();
                if k >= 8 {
                    times.push(t0.elapsed().as_secs_f64() * 1e3);
                }
                last = out.chunks_exact(vocab).map(|r| argmax(r) as u32).collect();
            }
            times.sort_by(f64::total_cmp);
            let ms = times[times.len() / 2];
            eprintln!(
                "{preset} q8: batch {b}: step {ms:.3} ms (median of {}), {:.0} tok/s aggregate",
                times.len(),
                b as f64 * 1e3 / ms
            );
            for s in 0..b {
                e.release(s);
            }
        }
    }
}
