//! Batched decode in the interpreter (what `graphrun serve` runs): several sequences in
//! their own KV-cache slots, at different positions, decoded in one step, give each
//! sequence exactly the logits it gets alone; slots are independent and reusable.

mod common;

use graphrun::exec::interp::Interpreter;
use graphrun::exec::{BatchEngine, Engine, NoObserver, OneSlot};
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::model::ModelFile;
use graphrun::model::synth::{Rng, random_tensor};
use graphrun::numerics::argmax;
use graphrun::quant::{GgmlType, QuantAct, vec_dot_q8};

/// Prompts of different lengths, so the slots sit at different positions in every step.
const PROMPTS: [&[u32]; 5] = [
    &[3, 77, 300, 5],
    &[12],
    &[260, 9, 41, 8, 100, 7, 2],
    &[55, 66],
    &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
];

/// Greedy continuation of `prompt` alone: the logits of each step, as bits.
fn solo(m: &ModelFile, act: ActSemantics, prompt: &[u32], steps: usize) -> Vec<Vec<u32>> {
    let mut it = Interpreter::new(
        m,
        lower(
            m,
            LowerOptions {
                act,
                ..Default::default()
            },
        )
        .unwrap(),
        64,
    )
    .unwrap();
    let t = prompt.len();
    let mut logits = it.step(prompt, t - 1..t, &mut NoObserver).unwrap();
    let mut out = vec![bits(&logits)];
    for _ in 1..steps {
        let tok = argmax(&logits) as u32;
        logits = it.step(&[tok], 0..1, &mut NoObserver).unwrap();
        out.push(bits(&logits));
    }
    out
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// All prompts prefilled in their own slots, then `steps - 1` batched greedy decode steps
/// over every slot at once (slot i decodes prompt i); the logits per prompt per step.
fn batched(m: &ModelFile, act: ActSemantics, steps: usize) -> Vec<Vec<Vec<u32>>> {
    let g = lower(
        m,
        LowerOptions {
            act,
            ..Default::default()
        },
    )
    .unwrap();
    let mut it = Interpreter::with_slots(m, g, 64, PROMPTS.len()).unwrap();
    // Prefill in reverse slot order: slot numbers and prompt order are unrelated.
    let mut last: Vec<Vec<f32>> = vec![Vec::new(); PROMPTS.len()];
    for (i, p) in PROMPTS.iter().enumerate().rev() {
        last[i] = BatchEngine::prefill(&mut it, i, p).unwrap();
    }
    let mut out: Vec<Vec<Vec<u32>>> = last.iter().map(|l| vec![bits(l)]).collect();
    for _ in 1..steps {
        // Rows in a shuffled slot order: the batch order is not the slot order.
        let order = [3, 0, 4, 2, 1];
        let batch: Vec<(usize, u32)> = order
            .iter()
            .map(|&s| (s, argmax(&last[s]) as u32))
            .collect();
        let logits = it.decode(&batch).unwrap();
        let vocab = logits.len() / batch.len();
        for (row, &(s, _)) in logits.chunks_exact(vocab).zip(&batch) {
            last[s] = row.to_vec();
            out[s].push(bits(row));
        }
    }
    out
}

#[test]
fn batched_decode_rows_equal_each_sequence_alone_bit_for_bit() {
    for (preset, act) in [
        ("tiny", ActSemantics::Q8),
        ("tiny", ActSemantics::F32),
        ("tiny-llama", ActSemantics::Q8),
    ] {
        let m = common::tiny_model(preset, 33);
        let together = batched(&m, act, 6);
        for (i, p) in PROMPTS.iter().enumerate() {
            assert!(
                solo(&m, act, p, 6) == together[i],
                "{preset} {}: prompt {i} decoded in a batch of {} differs from decoding it alone",
                act.name(),
                PROMPTS.len()
            );
        }
    }
}

#[test]
fn real_05b_batched_decode_equals_solo_decode_bit_for_bit() {
    let Some(p) = common::model_05b() else { return };
    let m = ModelFile::open(&p).unwrap();
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let together = batched(&m, act, 3);
        for (i, p) in PROMPTS.iter().enumerate() {
            assert!(
                solo(&m, act, p, 3) == together[i],
                "real 0.5B {}: prompt {i} differs in a batch of 5",
                act.name()
            );
        }
    }
}

#[test]
fn released_slot_starts_over_and_other_slots_keep_their_sequence() {
    let m = common::tiny_model("tiny", 5);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let mut it = Interpreter::with_slots(&m, g, 32, 2).unwrap();
    let a0 = BatchEngine::prefill(&mut it, 0, PROMPTS[0]).unwrap();
    BatchEngine::prefill(&mut it, 1, PROMPTS[2]).unwrap();
    // Slot 1 is reused for another prompt; slot 0's next step must not notice.
    it.release(1);
    assert_eq!(it.slot_pos(1), 0);
    let b = BatchEngine::prefill(&mut it, 1, PROMPTS[3]).unwrap();
    let next = it.decode(&[(0, argmax(&a0) as u32)]).unwrap();
    assert_eq!(it.slot_pos(0), PROMPTS[0].len() + 1);
    assert_eq!(it.slot_pos(1), PROMPTS[3].len());
    let want = solo(&m, ActSemantics::Q8, PROMPTS[0], 2);
    assert_eq!(bits(&next), want[1]);
    assert_eq!(bits(&b), solo(&m, ActSemantics::Q8, PROMPTS[3], 1)[0]);
}

#[test]
fn one_slot_adapter_runs_a_single_sequence_engine_like_the_interpreter() {
    let m = common::tiny_model("tiny", 8);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let engine: Box<dyn Engine> = Box::new(Interpreter::new(&m, g, 32).unwrap());
    let mut one = OneSlot(engine);
    assert_eq!((one.n_slots(), one.n_ctx(), one.name()), (1, 32, "interp"));
    let want = solo(&m, ActSemantics::Q8, PROMPTS[2], 3);
    let mut logits = one.prefill(0, PROMPTS[2]).unwrap();
    let mut got = vec![bits(&logits)];
    for _ in 1..3 {
        logits = one.decode(&[(0, argmax(&logits) as u32)]).unwrap();
        got.push(bits(&logits));
    }
    assert_eq!(got, want);
    let e = one.decode(&[(0, 1), (0, 2)]).unwrap_err().to_string();
    assert!(e.contains("one sequence per step"), "{e}");
    let e = one.prefill(1, &[1]).unwrap_err().to_string();
    assert!(e.contains("slot 1 does not exist"), "{e}");
}

#[test]
fn bad_batches_are_clear_errors() {
    let m = common::tiny_model("tiny", 2);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let mut it = Interpreter::with_slots(&m, g, 4, 2).unwrap();
    BatchEngine::prefill(&mut it, 0, &[1, 2, 3]).unwrap();
    BatchEngine::prefill(&mut it, 1, &[1]).unwrap();
    let e = it.decode(&[(1, 4), (1, 5)]).unwrap_err().to_string();
    assert!(e.contains("slot 1 appears twice"), "{e}");
    let e = it.decode(&[(2, 4)]).unwrap_err().to_string();
    assert!(e.contains("slot 2 does not exist (2 slots)"), "{e}");
    it.decode(&[(0, 4), (1, 5)]).unwrap();
    // Slot 0 is full (4 positions); the error names it.
    let e = it.decode(&[(1, 6), (0, 7)]).unwrap_err().to_string();
    assert!(
        e.contains("slot 0: context length exceeded") && e.contains("--ctx"),
        "{e}"
    );
    let e = BatchEngine::prefill(&mut it, 0, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one token"), "{e}");
}

#[test]
fn q8_matmul_tiles_for_every_batch_size_are_bit_identical_to_the_reference() {
    // A decode batch of B sequences is a matmul over B activation rows: every B from 1 to
    // 9 picks its own tile mix (2x4, 4x2, 8x1 for the legacy types), and 21 weight rows
    // leave a remainder after the 8-row blocks.
    let mut rng = Rng::new(3);
    let (n, k) = (21usize, 512usize);
    for ty in [
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let w = random_tensor(ty, (n * k) as u64, 0.05, &mut rng);
        let rb = w.len() / n;
        for t in 1..=9 {
            let acts: Vec<QuantAct> = (0..t)
                .map(|_| {
                    let x: Vec<f32> = (0..k).map(|_| rng.uniform() - 0.5).collect();
                    QuantAct::for_weight(ty, &x).unwrap()
                })
                .collect();
            let mut out = vec![f32::NAN; n * t];
            graphrun::quant::simd::matmul_rows_q8(ty, &w, rb, &acts, &mut out);
            for i in 0..n {
                for (c, a) in acts.iter().enumerate() {
                    let want = vec_dot_q8(ty, &w[i * rb..(i + 1) * rb], a);
                    assert_eq!(
                        out[i * t + c].to_bits(),
                        want.to_bits(),
                        "{ty} B={t} row {i} act {c}"
                    );
                }
            }
        }
    }
}
