//! The persistent decode program (src/sched/program/), on the CPU: for the synthetic
//! presets (tiny, tiny-llama, and the 0.5B/1.5B/7B shapes and type mixes, cut to a few
//! layers; the 1.5B and 7B with a smaller vocabulary so the test stays light) under both
//! activation semantics and for several grid sizes: every fused group becomes its
//! instructions in schedule order, dependencies point backwards and cover every shared
//! buffer, the CTAs' work ranges partition every matvec's rows and every Q/K/V pair, and
//! the shared memory fits two CTAs per SM on an RTX 4090 as well as an H200, for both KV
//! cache types (the attention stages 64 positions where they fit, else 32). Also: a
//! fault-injected graph and an unfused schedule are refused naming why, and `graphrun dump`
//! prints the program.

mod common;

use graphrun::codegen::Kv;
use graphrun::codegen::catalogue::{ATT_SPLIT_HEAD_BYTES, POp, QKV_PAIRS};
use graphrun::graph::{ActSemantics, Graph, KvType, LowerOptions, Op, lower};
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::sched::program::{self, Body, Program, ProgramOptions, Region, cta_items};
use graphrun::sched::{GroupKind, Phase, Schedule, schedule};

/// A synthetic model of `preset`'s shapes with `layers` layers (and `vocab` tokens).
fn model(preset: &str, layers: usize, vocab: Option<usize>) -> ModelFile {
    let mut spec = SynthSpec::preset(preset).unwrap();
    spec.n_layer = layers;
    if let Some(v) = vocab {
        spec.vocab = v;
    }
    ModelFile::from_bytes(build(&spec, 5, None).to_bytes(), &format!("{preset}.gguf")).unwrap()
}

/// The RTX 4090's shared memory per SM and opt-in per CTA (the smaller of the two target
/// GPUs).
const SMEM_4090_SM: usize = 102_400;
const SMEM_4090: usize = 101_376;

fn options(ctas: usize, max_att_splits: Option<usize>) -> ProgramOptions {
    ProgramOptions {
        ctas,
        n_ctx: 4096,
        max_att_splits,
        smem_per_sm: SMEM_4090_SM,
        max_smem: SMEM_4090,
    }
}

fn check_program(label: &str, g: &Graph, s: &Schedule, p: &Program) {
    p.check().unwrap();
    let n = p.instrs.len();
    // Groups in order, each covered: attention by attn + attn_merge, the rest by one.
    let mut next_group = 0;
    for ins in &p.instrs[..n - 2] {
        let gi = ins
            .group
            .unwrap_or_else(|| panic!("{label}: {} has no group", ins.name));
        assert!(
            gi == next_group || gi + 1 == next_group,
            "{label}: group order"
        );
        next_group = gi + 1;
        assert_eq!(
            ins.name, s.groups[gi].name,
            "{label}: instruction named by its group"
        );
        assert!(
            g.find(&ins.name).is_some(),
            "{label}: {} is a graph node",
            ins.name
        );
    }
    assert_eq!(next_group, s.groups.len(), "{label}: every group covered");
    for (gi, ins) in p.by_group(s.groups.len()).iter().enumerate() {
        let ops: Vec<POp> = ins.iter().map(|&i| p.instrs[i].op).collect();
        let want: &[POp] = match &s.groups[gi].kind {
            GroupKind::Single { node } if matches!(g.node(*node).op, Op::Attention { .. }) => {
                &[POp::Attn, POp::AttnMerge]
            }
            GroupKind::Single { .. } => &[POp::Embed],
            GroupKind::Qkv { .. } => &[POp::Qkv],
            _ => &[POp::Matvec],
        };
        assert_eq!(ops, want, "{label}: group {}", s.groups[gi].name);
    }
    assert_eq!(
        p.instrs[n - 2..].iter().map(|i| i.op).collect::<Vec<_>>(),
        [POp::Argmax, POp::ArgmaxMerge]
    );
    let hp = &g.hparams;
    for (j, ins) in p.instrs.iter().enumerate() {
        assert!(ins.deps.len() <= program::MAX_DEPS);
        assert!(
            ins.deps.iter().all(|&d| d < j),
            "{label}: i{j} waits on a later instruction"
        );
        // Every instruction but the embedding waits on something (the chain of a step).
        assert_eq!(
            ins.deps.is_empty(),
            j == 0,
            "{label}: i{j} deps {:?}",
            ins.deps
        );
        match &ins.body {
            Body::Matvec {
                rows, tile_rows, ..
            } => {
                // Rows covered exactly once across the CTAs, in order.
                let mut next = 0;
                for c in 0..p.ctas {
                    let r = cta_items(ins.items, c, p.ctas);
                    let (r0, r1) = (r.start * tile_rows, (r.end * tile_rows).min(*rows));
                    if r0 < r1 {
                        assert_eq!(r0, next, "{label}: i{j} CTA {c}");
                        next = r1;
                    }
                }
                assert_eq!(next, *rows, "{label}: i{j} rows covered");
            }
            Body::Qkv { .. } => {
                let pairs = (hp.n_head + 2 * hp.n_head_kv) * hp.head_dim / 2;
                let q = QKV_PAIRS as usize;
                assert!(ins.items * q >= pairs && (ins.items - 1) * q < pairs);
            }
            Body::Attn { geom, .. } | Body::AttnMerge { geom, .. } => {
                let want = if ins.op == POp::Attn {
                    hp.n_head_kv * geom.n_split
                } else {
                    hp.n_head_kv
                };
                assert_eq!(ins.items, want, "{label}: i{j} items");
                assert_eq!(geom.n_split, p.att_splits);
                assert!(geom.nc == 32 || geom.nc == 64);
                assert_eq!(
                    geom.row_bytes,
                    hp.head_dim * Kv::from(g.kv_type()).bytes() + 16
                );
                assert!(geom.smem >= ATT_SPLIT_HEAD_BYTES as usize + 2 * geom.stage_bytes);
                assert!(geom.smem <= p.smem_bytes);
            }
            _ => {}
        }
    }
    let logits = p
        .instrs
        .iter()
        .filter(|i| i.writes.contains(&Region::Logits))
        .count();
    assert_eq!(logits, 1, "{label}: one instruction writes the logits");
    // Two CTAs per SM where the shapes allow (on an RTX 4090 every preset but head dim 128
    // with an f32 cache), one otherwise.
    let two = program::att_smem_budget(SMEM_4090_SM, SMEM_4090);
    assert!(
        p.smem_bytes <= two || (hp.head_dim == 128 && p.smem_bytes <= SMEM_4090),
        "{label}: {} bytes of shared memory",
        p.smem_bytes
    );
    assert_eq!(
        p.kv,
        Kv::from(g.kv_type()),
        "{label}: the program's cache type"
    );
    // Activations without reuse: every written value its own span.
    let mut spans: Vec<(usize, usize)> = (0..g.len())
        .filter_map(|i| {
            p.values.offset[i].map(|o| (o, g.node(graphrun::graph::NodeId(i as u32)).width))
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "{label}: values share memory");
    }
}

#[test]
fn every_preset_produces_a_checked_program_for_every_grid() {
    let cases: [(&str, usize, Option<usize>); 5] = [
        ("tiny", 2, None),
        ("tiny-llama", 2, None),
        ("0.5b", 3, None),
        ("1.5b", 3, Some(8192)),
        ("7b", 2, Some(8192)),
    ];
    for (preset, layers, vocab) in cases {
        let m = model(preset, layers, vocab);
        for (act, kv) in [
            (ActSemantics::Q8, KvType::F16),
            (ActSemantics::F32, KvType::F16),
            (ActSemantics::Q8, KvType::F32),
        ] {
            let g = lower(&m, LowerOptions { act, kv }).unwrap();
            let s = schedule(&g, Phase::Decode, true).unwrap();
            // One CTA, a few, an RTX 4090 (128 SMs), an H200 at 2 and 4 per SM.
            for ctas in [1, 7, 256, 264, 528] {
                let label = format!("{preset} {} kv {} {ctas} CTAs", act.name(), kv.name());
                let p = program::build(&g, &s, options(ctas, None))
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(p.ctas, ctas);
                check_program(&label, &g, &s, &p);
            }
        }
    }
}

#[test]
fn shared_memory_is_the_largest_staging_or_attention_need() {
    // 7B shapes (G = 7, head dim 128) on an H200 budget: the f16 cache stages 64 positions
    // (4 × 64 rows of 272 bytes after SplitHead), 75,824 bytes, more than ffn_down's Q8_K
    // staging (K = 18,944: values, scales, block sums).
    let m = model("7b", 2, Some(8192));
    let h200 = program::att_smem_budget(program::H200_SMEM_PER_SM, program::H200_MAX_SMEM);
    assert_eq!(h200, 107_008);
    let opts = ProgramOptions {
        ctas: 264,
        n_ctx: 4096,
        max_att_splits: None,
        smem_per_sm: program::H200_SMEM_PER_SM,
        max_smem: program::H200_MAX_SMEM,
    };
    let g = lower(&m, LowerOptions::default()).unwrap();
    let s = schedule(&g, Phase::Decode, true).unwrap();
    let p = program::build(&g, &s, opts).unwrap();
    let staging = p
        .instrs
        .iter()
        .filter_map(|i| match &i.body {
            Body::Matvec { stage, .. } | Body::Qkv { stage, .. } => Some(stage.bytes),
            _ => None,
        })
        .max()
        .unwrap();
    assert_eq!(staging, 18_944 + 18_944 / 256 * 4 + 8 + 18_944 / 16 * 4);
    assert_eq!(p.smem_bytes, ATT_SPLIT_HEAD_BYTES as usize + 4 * 64 * 272);
    // An f32 cache: 64-position stages (141 KB) would leave one CTA per SM: 32 positions.
    let g = lower(
        &m,
        LowerOptions {
            kv: KvType::F32,
            ..Default::default()
        },
    )
    .unwrap();
    let s = schedule(&g, Phase::Decode, true).unwrap();
    let p = program::build(&g, &s, opts).unwrap();
    assert_eq!(p.kv, Kv::F32);
    assert_eq!(p.smem_bytes, ATT_SPLIT_HEAD_BYTES as usize + 4 * 32 * 528);
    // An RTX 4090: the f32 cache's 32 positions (73,776 bytes) leave one CTA per SM, so
    // within its 99 KiB per CTA: 32 positions still (64 take 141,360); the f16 cache keeps
    // two CTAs per SM with 32 positions.
    let p = program::build(&g, &s, options(264, None)).unwrap();
    assert_eq!(p.smem_bytes, ATT_SPLIT_HEAD_BYTES as usize + 4 * 32 * 528);
    let g16 = lower(&m, LowerOptions::default()).unwrap();
    let s16 = schedule(&g16, Phase::Decode, true).unwrap();
    let p = program::build(&g16, &s16, options(264, None)).unwrap();
    assert_eq!(p.smem_bytes, ATT_SPLIT_HEAD_BYTES as usize + 4 * 32 * 272);
    // Too little shared memory for even 32 positions is refused, saying so.
    let tight = ProgramOptions {
        smem_per_sm: 48 * 1024,
        max_smem: 48 * 1024,
        ..opts
    };
    let e = program::build(&g, &s, tight).unwrap_err().to_string();
    assert!(e.contains("shared memory"), "{e}");
}

#[test]
fn attention_splits_follow_the_options() {
    let m = model("tiny", 2, None);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let s = schedule(&g, Phase::Decode, true).unwrap();
    for (ctas, max, want) in [(264, None, 128), (264, Some(4), 4), (6, None, 3)] {
        assert_eq!(
            program::build(&g, &s, options(ctas, max))
                .unwrap()
                .att_splits,
            want
        );
    }
}

#[test]
fn a_faulted_node_or_an_unfused_schedule_is_refused_by_name() {
    let m = model("tiny", 2, None);
    let mut g = lower(&m, LowerOptions::default()).unwrap();
    let opts = options(264, None);
    let unfused = schedule(&g, Phase::Decode, false).unwrap();
    let e = program::build(&g, &unfused, opts).unwrap_err().to_string();
    assert!(e.contains("fused"), "{e}");
    let faults = vec!["blk.1.ffn_gate:scale=1.001".parse().unwrap()];
    graphrun::fault::inject(&mut g, &faults).unwrap();
    let s = schedule(&g, Phase::Decode, true).unwrap();
    let e = program::build(&g, &s, opts).unwrap_err().to_string();
    assert!(e.contains("blk.1.ffn_gate"), "{e}");
}

#[test]
fn dump_lists_the_persistent_program() {
    let dir = common::scratch("persistent-dump");
    let path = dir.join("tiny.gguf");
    let spec = SynthSpec::preset("tiny").unwrap();
    std::fs::write(&path, build(&spec, 1, None).to_bytes()).unwrap();
    let p = path.to_str().unwrap();
    let (code, out, err) = common::graphrun(&[
        "dump",
        p,
        "--stage",
        "fused",
        "--decode-kernel",
        "persistent",
        "--ctas",
        "7",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0]
            .starts_with("program qwen2 (decode, persistent kernel): 16 instructions for 7 CTAs"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("i0    embed         token_embd"),
        "{out}"
    );
    assert!(
        lines[2].contains("qkv") && lines[2].contains("blk.0.attn_v_cache"),
        "{out}"
    );
    assert!(lines.last().unwrap().contains("argmax_merge"), "{out}");
    let (code, out, err) = common::graphrun(&[
        "dump",
        p,
        "--stage",
        "fused",
        "--decode-kernel",
        "persistent",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ctas"], 264);
    let ins = v["instructions"].as_array().unwrap();
    assert_eq!(ins.len(), 16);
    assert_eq!(ins[3]["op"], "attn_merge");
    assert_eq!(ins[3]["deps"], serde_json::json!([2]));
    std::fs::remove_dir_all(dir).ok();
}
