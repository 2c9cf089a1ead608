//! The interpreter's KV cache types (`KvType`, src/graph/op.rs): with `f16` the cache holds
//! K and V rounded to nearest even (as the GPU stores them) and attention reads exactly
//! those values; with `f32` every node's output is bit for bit what it was before the cache
//! type existed.

mod common;

use graphrun::exec::Observer;
use graphrun::exec::interp::Interpreter;
use graphrun::graph::{ActSemantics, KvKind, KvType, LowerOptions, Node, NodeId, Op, lower};
use std::collections::HashMap;

/// FNV-1a over every node output of a run (name, position, f32 bits), and the outputs of
/// the kv_append nodes and their inputs.
#[derive(Default)]
struct Record {
    hash: u64,
    outputs: HashMap<(String, usize), Vec<f32>>,
}

impl Observer for Record {
    fn node_done(
        &mut self,
        _: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> graphrun::Result<()> {
        if self.hash == 0 {
            self.hash = 0xcbf2_9ce4_8422_2325;
        }
        // The digests below were recorded when a step computed every node at every row but
        // the logits (at the rows asked for); `run` asks for every row's logits so that the
        // output tail runs at every row again, and the logits' last row is what is hashed.
        let (pos, data) = if node.name == "logits" && rows > 1 {
            let w = data.len() / rows;
            (pos + rows - 1, &mut data[(rows - 1) * w..])
        } else {
            (pos, data)
        };
        let bytes = node
            .name
            .bytes()
            .chain((pos as u64).to_le_bytes())
            .chain(data.iter().flat_map(|v| v.to_bits().to_le_bytes()));
        for b in bytes {
            self.hash = (self.hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.outputs.insert((node.name.clone(), pos), data.to_vec());
        Ok(())
    }
}

const PROMPT: [u32; 7] = [1, 5, 9, 200, 33, 7, 100];

/// A 7-token prefill then 3 greedy decode steps on a tiny synthetic model, recorded.
fn run(preset: &str, act: ActSemantics, kv: KvType) -> (Record, Interpreter<'static>) {
    let m = Box::leak(Box::new(common::tiny_model(preset, 11)));
    let g = lower(m, LowerOptions { act, kv }).unwrap();
    let mut it = Interpreter::new(m, g, 32).unwrap();
    let mut rec = Record::default();
    // Every row's logits: the output tail (`Graph::output_tail`) at every row.
    let all = it.step(&PROMPT, 0..PROMPT.len(), &mut rec).unwrap();
    let mut logits = all[all.len() / PROMPT.len() * (PROMPT.len() - 1)..].to_vec();
    for _ in 0..3 {
        let tok = graphrun::generate::argmax(&logits) as u32;
        logits = it.step(&[tok], 0..1, &mut rec).unwrap();
    }
    (rec, it)
}

#[test]
fn f16_cache_holds_k_and_v_rounded_to_nearest_even() {
    let (rec, it) = run("tiny", ActSemantics::F32, KvType::F16);
    let g = it.graph().clone();
    let kvw = g.hparams.n_head_kv * g.hparams.head_dim;
    let mut checked = 0;
    for (_, n) in g.nodes() {
        let Op::KvAppend { layer, cache, kv } = n.op else {
            continue;
        };
        assert_eq!(kv, KvType::F16, "{}: lowered with --kv f16", n.name);
        let input = &g.node(n.inputs[0]).name;
        // The prefill's 7 rows, then one row per decode step.
        for (pos, rows) in [(0, 7), (7, 1), (8, 1), (9, 1)] {
            let x = &rec.outputs[&(input.clone(), pos)];
            let out = &rec.outputs[&(n.name.clone(), pos)];
            let held = &it.cache(layer, cache)[pos * kvw..(pos + rows) * kvw];
            assert_eq!(x.len(), rows * kvw);
            for ((&v, &o), &c) in x.iter().zip(out).zip(held) {
                let want = half::f16::from_f32(v).to_f32();
                assert_eq!(
                    c.to_bits(),
                    want.to_bits(),
                    "{} @{pos}: {v} held as {c}",
                    n.name
                );
                assert_eq!(o.to_bits(), want.to_bits(), "{} @{pos}: output {o}", n.name);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * g.hparams.n_layer * 10 * kvw);
    // Rounding happened: some values differ from their f32 inputs.
    let (f32_run, _) = run("tiny", ActSemantics::F32, KvType::F32);
    let k0 = ("blk.0.attn_k_cache".to_string(), 0);
    assert_ne!(rec.outputs[&k0], f32_run.outputs[&k0]);
}

#[test]
fn write_cache_rounds_as_the_cache_type() {
    for (kv, v) in [(KvType::F16, 0.1f32), (KvType::F32, 0.1f32)] {
        let m = common::tiny_model("tiny", 11);
        let g = lower(
            &m,
            LowerOptions {
                kv,
                ..Default::default()
            },
        )
        .unwrap();
        let mut it = Interpreter::new(&m, g, 4).unwrap();
        it.write_cache(1, KvKind::V, &[v, -v, 65504.0, 1e-8]);
        let want: Vec<f32> = [v, -v, 65504.0, 1e-8]
            .iter()
            .map(|&x| kv.round(x))
            .collect();
        assert_eq!(&it.cache(1, KvKind::V)[..4], want.as_slice());
        // f16 rounds 0.1 to 0.099975586 (nearest even) and flushes 1e-8 to 0; f32 keeps both.
        match kv {
            KvType::F16 => assert_eq!(want, [0.099975586, -0.099975586, 65504.0, 0.0]),
            KvType::F32 => assert_eq!(want, [0.1, -0.1, 65504.0, 1e-8]),
        }
    }
}

/// Digests of every node output of `run(preset, act, F32)`, recorded at commit 4cc5009 (the
/// interpreter before the cache type existed: f32 cache, no rounding) with the same run.
const BEFORE: [(&str, ActSemantics, u64); 4] = [
    ("tiny", ActSemantics::Q8, 0x106e_ed7b_3850_3684),
    ("tiny", ActSemantics::F32, 0x443b_79de_37e0_481c),
    ("tiny-llama", ActSemantics::Q8, 0x1b40_b674_2bd6_9363),
    ("tiny-llama", ActSemantics::F32, 0x335c_a03a_e2f7_e14d),
];

#[test]
fn f32_cache_traces_are_bit_identical_to_before() {
    for (preset, act, want) in BEFORE {
        let (rec, _) = run(preset, act, KvType::F32);
        assert_eq!(
            rec.hash,
            want,
            "{preset} --act {} --kv f32: node outputs differ from the interpreter before the cache type (digest {:#018x})",
            act.name(),
            rec.hash
        );
    }
    // The f16 cache changes them (else the test above proves nothing about the type).
    let (rec, _) = run("tiny", ActSemantics::Q8, KvType::F16);
    assert_ne!(rec.hash, BEFORE[0].2);
}
