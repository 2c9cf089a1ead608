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

/// Every node output of a step: (node, first position, rows, values).
#[derive(Default)]
struct Records(Vec<(graphrun::graph::NodeId, usize, usize, Vec<f32>)>);

impl graphrun::exec::Observer for Records {
    fn node_done(
        &mut self,
        id: graphrun::graph::NodeId,
        _: &graphrun::graph::Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> graphrun::Result<()> {
        self.0.push((id, pos, rows, data.to_vec()));
        Ok(())
    }
}

#[test]
fn the_output_tail_runs_at_the_logit_rows_with_the_values_of_every_row() {
    // After the last attention, every node depends on its own row alone (the last block's
    // output projection and FFN, the final norm, the logits): a step computes them at the
    // rows whose logits it returns, with the values a step at every row gives those rows.
    for preset in ["tiny", "tiny-llama"] {
        let m = common::tiny_model(preset, 5);
        let g = lower(&m, LowerOptions::default()).unwrap();
        let tail = g.output_tail();
        let last = g.hparams.n_layer - 1;
        let names: Vec<&str> = g
            .nodes()
            .filter(|(id, _)| *id >= tail)
            .map(|(_, n)| n.name.as_str())
            .collect();
        assert_eq!(
            names.first(),
            Some(&format!("blk.{last}.attn_out").as_str())
        );
        assert_eq!(names.last(), Some(&"logits"));
        assert!(names.contains(&"output_norm"), "{names:?}");
        let toks: Vec<u32> = vec![3, 77, 300, 5, 12, 260, 9, 41];
        let run = |rows: std::ops::Range<usize>| {
            let mut it = Interpreter::new(&m, g.clone(), 64).unwrap();
            let mut rec = Records::default();
            let logits = it.step(&toks, rows, &mut rec).unwrap();
            (logits, rec.0)
        };
        let (all, every) = run(0..toks.len());
        let (part, some) = run(5..7);
        let vocab = g.node(g.output()).width;
        assert_eq!(part, all[5 * vocab..7 * vocab]);
        assert_eq!(every.len(), some.len());
        for ((id, pos, rows, data), (id2, pos2, rows2, data2)) in every.iter().zip(&some) {
            assert_eq!(id, id2);
            if *id >= tail {
                let w = g.node(*id).width;
                assert_eq!((*pos2, *rows2), (5, 2), "{}", g.node(*id).name);
                assert_eq!(data2[..], data[5 * w..7 * w], "{}", g.node(*id).name);
            } else {
                assert_eq!((pos, rows), (pos2, rows2), "{}", g.node(*id).name);
                assert_eq!(data, data2, "{}", g.node(*id).name);
            }
        }
    }
}
