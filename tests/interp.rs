//! Interpreter behaviour on tiny synthetic models: incremental decode equals prefill, errors
//! are clear, traces are complete and readable.

mod common;

use graphrun::exec::NoObserver;
use graphrun::exec::interp::Interpreter;
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::trace::{NodePattern, Tracer, npy, read};

#[test]
fn incremental_decode_equals_one_prefill_bit_for_bit() {
    for (preset, act) in [
        ("tiny", ActSemantics::Q8),
        ("tiny", ActSemantics::F32),
        ("tiny-llama", ActSemantics::Q8),
    ] {
        let m = common::tiny_model(preset, 21);
        let toks: Vec<u32> = vec![3, 77, 300, 5, 12, 260, 9, 41];
        let mut a = Interpreter::new(
            &m,
            lower(
                &m,
                LowerOptions {
                    act,
                    ..Default::default()
                },
            )
            .unwrap(),
            64,
        )
        .unwrap();
        let all = a.step(&toks, 0..toks.len(), &mut NoObserver).unwrap();
        let mut b = Interpreter::new(
            &m,
            lower(
                &m,
                LowerOptions {
                    act,
                    ..Default::default()
                },
            )
            .unwrap(),
            64,
        )
        .unwrap();
        let mut inc = b.step(&toks[..3], 0..3, &mut NoObserver).unwrap();
        for &t in &toks[3..] {
            inc.extend(b.step(&[t], 0..1, &mut NoObserver).unwrap());
        }
        assert_eq!(all.len(), inc.len());
        let differing = all
            .iter()
            .zip(&inc)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(
            differing,
            0,
            "{preset} {}: prefill and incremental decode differ in {differing} logits",
            act.name()
        );
        assert!(all.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn context_and_token_errors_are_clear() {
    let m = common::tiny_model("tiny", 2);
    let mut it = Interpreter::new(&m, lower(&m, LowerOptions::default()).unwrap(), 4).unwrap();
    it.step(&[1, 2, 3], 2..3, &mut NoObserver).unwrap();
    let e = it
        .step(&[4, 5], 1..2, &mut NoObserver)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("context length exceeded") && e.contains("--ctx"),
        "{e}"
    );
    let e = it
        .step(&[100_000], 0..1, &mut NoObserver)
        .unwrap_err()
        .to_string();
    assert!(e.contains("token id 100000"), "{e}");
}

#[test]
fn trace_records_every_node_of_every_step_and_tensors_round_trip() {
    let m = common::tiny_model("tiny", 4);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let n_nodes = g.len();
    let dir = std::env::temp_dir().join(format!("graphrun-trace-{}", std::process::id()));
    let mut tr = Tracer::create(
        &dir,
        NodePattern::all(),
        Some(NodePattern::new("blk.1.ffn_*,logits")),
        graphrun::exec::Executor::Interp,
    )
    .unwrap();
    let mut it = Interpreter::new(&m, g, 32).unwrap();
    let logits = it.step(&[1, 2, 3, 4], 3..4, &mut tr).unwrap();
    it.step(&[7], 0..1, &mut tr).unwrap();
    tr.finish().unwrap();
    let recs = read(&dir).unwrap();
    assert_eq!(recs.len(), 2 * n_nodes);
    let first = &recs[0];
    assert_eq!(
        (first.node.as_str(), first.shape, first.pos, first.step),
        ("token_embd", [4, 256], 0, 0)
    );
    let dec = recs
        .iter()
        .find(|r| r.node == "blk.1.ffn_down" && r.step == 1)
        .unwrap();
    assert_eq!(
        (dec.shape, dec.pos, dec.act),
        ([1, 256], 4, Some(graphrun::graph::ActSemantics::Q8))
    );
    let lrec = recs
        .iter()
        .find(|r| r.node == "logits" && r.step == 0)
        .unwrap();
    assert_eq!((lrec.pos, lrec.shape), (3, [1, 512]));
    let (shape, data) =
        npy::read_f32(&dir.join("tensors").join(lrec.tensor.as_ref().unwrap())).unwrap();
    assert_eq!(shape, vec![1, 512]);
    assert_eq!(data, logits);
    let s = graphrun::trace::Stats::of(&logits);
    assert_eq!(
        lrec.stats,
        serde_json::from_value(serde_json::to_value(s).unwrap()).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}
