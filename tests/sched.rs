//! The scheduler: five kernel groups per block in decode (RMSNorm → Q/K/V (+bias) → RoPE →
//! KV append; attention; O projection + residual; RMSNorm → gate & up → SwiGLU; down
//! projection + residual) plus final norm + logits; every node covered exactly once, groups
//! in dependency order, each phase's own kernels from the catalogue, and a buffer plan in
//! which no two live values share memory.

mod common;

use graphrun::codegen::KernelId;
use graphrun::graph::{LowerOptions, lower};
use graphrun::sched::{GroupKind, Phase, schedule};

fn check(g: &graphrun::graph::Graph, phase: Phase, fuse: bool) -> graphrun::sched::Schedule {
    let s = schedule(g, phase, fuse).unwrap();
    assert_eq!(s.phase, phase);
    let group_of = s.group_of(g.len());
    assert!(
        group_of.iter().all(|&x| x != usize::MAX),
        "a node is not covered"
    );
    let covered: usize = s.groups.iter().map(|gr| gr.nodes.len()).sum();
    assert_eq!(covered, g.len(), "a node is covered twice");
    for (gi, gr) in s.groups.iter().enumerate() {
        for n in &gr.nodes {
            for i in &g.node(*n).inputs {
                assert!(
                    group_of[i.index()] <= gi,
                    "group {} reads {} from a later group",
                    gr.name,
                    g.node(*i).name
                );
            }
        }
        for k in &gr.kernels {
            assert!(
                KernelId::all().contains(k),
                "group {} needs kernel {k} which is not in the catalogue",
                gr.name
            );
            // The phase's own kernels: no decode matvec in a prefill schedule (a one-row
            // prefill matmul is chosen at run time), no prefill GEMM in decode. Prefill
            // launches prep only as a GEMM group's RMSNorm prologue.
            let prologue = matches!(
                gr.kind,
                GroupKind::GateUp { norm: Some(_), .. }
                    | GroupKind::SharedInput { norm: Some(_), .. }
            );
            match phase {
                Phase::Prefill => assert!(
                    !matches!(k, KernelId::Matvec { .. } | KernelId::AttentionSplit { .. })
                        && (*k != KernelId::Prep || prologue),
                    "prefill group {} launches decode kernel {k}",
                    gr.name
                ),
                Phase::Decode => assert!(
                    !matches!(
                        k,
                        KernelId::Mmq { .. }
                            | KernelId::Matmul { .. }
                            | KernelId::QuantizeQ8
                            | KernelId::Attention { .. }
                            | KernelId::AttentionMma
                    ),
                    "decode group {} launches prefill kernel {k}",
                    gr.name
                ),
            }
        }
    }
    let plan = s.plan(g, 7);
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, first, last)
    for (gi, _) in s.groups.iter().enumerate() {
        for w in s.writes(gi) {
            if let Some(off) = plan.offset[w.index()] {
                let last = (gi..s.groups.len())
                    .filter(|&j| s.reads(g, j).contains(&w))
                    .max()
                    .unwrap_or(gi);
                spans.push((off, 7 * g.node(w).width, gi, last));
            }
        }
    }
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            let mem = a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
            let time = a.2 <= b.3 && b.2 <= a.3;
            assert!(!(mem && time), "live buffers overlap: {a:?} {b:?}");
        }
        assert!(a.0 + a.1 <= plan.total);
    }
    s
}

#[test]
fn fused_05b_has_five_kernels_per_block() {
    let Some(p) = common::model_05b() else { return };
    let m = graphrun::model::ModelFile::open(p).unwrap();
    let g = lower(&m, LowerOptions::default()).unwrap();
    let s = check(&g, Phase::Decode, true);
    assert_eq!(s.groups.len(), 1 + 24 * 5 + 1);
    let blk3: Vec<(&str, &str)> = s
        .groups
        .iter()
        .filter(|gr| gr.name.starts_with("blk.3."))
        .map(|gr| (gr.pass, gr.name.as_str()))
        .collect();
    assert_eq!(
        blk3,
        [
            ("fuse_qkv", "blk.3.attn_v_cache"),
            ("single", "blk.3.attn"),
            ("fuse_matmul_add", "blk.3.attn_residual"),
            ("fuse_norm_gate_up", "blk.3.ffn_swiglu"),
            ("fuse_matmul_add", "blk.3.ffn_residual"),
        ]
    );
    // Layer 0 has a Q8_0 attn_v beside Q5_0 q/k.
    assert_eq!(s.groups[1].kernel_names(), "prep+qkv_q5_0_q8_0_q8_f16");
    assert_eq!(
        s.groups.last().unwrap().kernel_names(),
        "prep+matvec_q8_0_q8_none"
    );
    let unfused = check(&g, Phase::Decode, false);
    assert_eq!(unfused.groups.len(), g.len());
    // Prefill: q8 matmuls with K a multiple of 128 take the tiled integer GEMM after
    // activation quantization (896 = 7·128); the two per block that feed a residual add
    // (attn_out, ffn_down) take it in the GEMM's epilogue, and gate, silu, up and mul are
    // one group (SiLU(gate) · up in the up GEMM's epilogue); every other node is its own.
    // Q, K and V run as one GEMM launch that takes the attention norm (the prep kernel norms
    // and quantizes): one kernel where V has Q and K's type, `mmq_*_v_*` where it does not
    // (V is Q8_0 beside Q5_0 Q and K in some layers of this file).
    let prefill = check(&g, Phase::Prefill, true);
    assert!(prefill.fused);
    let node = |name: String| g.nodes().find(|(_, n)| n.name == name).unwrap();
    let mut mixed = 0;
    for l in 0..24 {
        let [(norm, _), (q, qn), (k, kn), (v, vn)] =
            ["attn_norm", "attn_q", "attn_k", "attn_v"].map(|x| node(format!("blk.{l}.{x}")));
        assert_eq!(qn.weight_type(), kn.weight_type());
        let gr = prefill
            .groups
            .iter()
            .find(|gr| gr.nodes.contains(&q))
            .unwrap();
        assert_eq!(gr.pass, "fuse_shared_input", "{}", gr.name);
        assert_eq!(gr.nodes, [norm, q, k, v], "{}", gr.name);
        let want = if vn.weight_type() == qn.weight_type() {
            "prep+mmq_q5_0"
        } else {
            mixed += 1;
            "prep+mmq_q5_0_v_q8_0"
        };
        assert_eq!(gr.kernel_names(), want, "{}", gr.name);
    }
    assert!(
        mixed > 0 && mixed < 24,
        "V is Q8_0 in some layers, {mixed} here"
    );
    // Per block, groups fewer than nodes: 2 residual adds in their GEMMs, silu/up/mul in the
    // gate GEMM's group (3), K and V in Q's (2), the Q/K/V tail of 3 biases, 2 RoPEs and 2
    // cache appends as one launch (6), and the FFN and attention norms in their GEMM groups.
    assert_eq!(
        prefill.groups.len(),
        g.len() - 2 * 24 - 3 * 24 - 2 * 24 - 6 * 24 - 24 - 24
    );
    let res: Vec<(&str, String)> = prefill
        .groups
        .iter()
        .filter(|gr| gr.name.starts_with("blk.3.") && gr.nodes.len() > 1)
        .map(|gr| {
            (
                gr.name.as_str(),
                format!("{} {}", gr.pass, gr.kernel_names()),
            )
        })
        .collect();
    let down = prefill
        .groups
        .iter()
        .find(|gr| gr.name == "blk.3.ffn_residual")
        .unwrap();
    let swiglu = prefill
        .groups
        .iter()
        .find(|gr| gr.name == "blk.3.ffn_swiglu")
        .unwrap();
    assert_eq!(
        res,
        [
            (
                "blk.3.attn_v",
                "fuse_shared_input prep+mmq_q5_0_v_q8_0".to_string()
            ),
            (
                "blk.3.attn_v_cache",
                "fuse_qkv_post qkv_post_f16".to_string()
            ),
            (
                "blk.3.attn_residual",
                "fuse_matmul_add quantize_q8+mmq_q5_0".to_string()
            ),
            (
                "blk.3.ffn_swiglu",
                format!("fuse_gate_up {}", swiglu.kernel_names())
            ),
            (
                "blk.3.ffn_residual",
                format!("fuse_matmul_add {}", down.kernel_names())
            ),
        ]
    );
    let names: Vec<&str> = swiglu
        .nodes
        .iter()
        .map(|n| g.node(*n).name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "blk.3.ffn_norm",
            "blk.3.ffn_gate",
            "blk.3.ffn_silu",
            "blk.3.ffn_up",
            "blk.3.ffn_swiglu"
        ]
    );
    // The norm and the quantization in one launch (prep), then one GEMM over the rows of
    // both (same weight type here); the group reads the rows before the norm.
    assert_eq!(swiglu.kernel_names(), "prep+mmq_pair_q5_0");
    // The group writes only the result: the gate's product stays in the GEMM's registers.
    let names_of = |ids: &[graphrun::graph::NodeId]| -> Vec<&str> {
        ids.iter().map(|n| g.node(*n).name.as_str()).collect()
    };
    let group_at = |name: &str| {
        prefill
            .groups
            .iter()
            .position(|gr| gr.name == name)
            .unwrap()
    };
    let gi = group_at("blk.3.ffn_swiglu");
    assert_eq!(names_of(&prefill.writes(gi)), ["blk.3.ffn_swiglu"]);
    assert_eq!(names_of(&prefill.reads(&g, gi)), ["blk.3.attn_residual"]);
    assert!(down.kernel_names().starts_with("quantize_q8+mmq_q"));
    assert_eq!(check(&g, Phase::Prefill, false).groups.len(), g.len());
    // Under f32 semantics the matmuls run on CUDA cores, which have no residual epilogue.
    let g32 = lower(
        &m,
        LowerOptions {
            act: graphrun::graph::ActSemantics::F32,
            ..LowerOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        check(&g32, Phase::Prefill, true).groups.len(),
        g32.len() - 6 * 24
    );
    // The Q/K/V tail: its nodes, where it runs (after the V product, before attention),
    // and what it stores in the arena (Q after RoPE; K and V go to the cache).
    let gi = group_at("blk.3.attn_v_cache");
    assert_eq!(
        names_of(&prefill.groups[gi].nodes),
        [
            "blk.3.attn_q_bias",
            "blk.3.attn_rope_q",
            "blk.3.attn_k_bias",
            "blk.3.attn_rope_k",
            "blk.3.attn_k_cache",
            "blk.3.attn_v_bias",
            "blk.3.attn_v_cache"
        ]
    );
    let around: Vec<&str> = prefill.groups[gi - 1..=gi + 1]
        .iter()
        .map(|gr| gr.name.as_str())
        .collect();
    assert_eq!(around, ["blk.3.attn_v", "blk.3.attn_v_cache", "blk.3.attn"]);
    assert_eq!(names_of(&prefill.writes(gi)), ["blk.3.attn_rope_q"]);
    assert_eq!(
        names_of(&prefill.reads(&g, gi)),
        ["blk.3.attn_q", "blk.3.attn_k", "blk.3.attn_v"]
    );
    // Layer 0: Q and K (Q5_0) and V (Q8_0) in one launch, V's tiles last.
    let qkv = prefill
        .groups
        .iter()
        .find(|gr| gr.name == "blk.0.attn_v")
        .unwrap();
    assert_eq!(qkv.kernel_names(), "prep+mmq_q5_0_v_q8_0");
    assert_eq!(
        names_of(&qkv.nodes),
        [
            "blk.0.attn_norm",
            "blk.0.attn_q",
            "blk.0.attn_k",
            "blk.0.attn_v"
        ]
    );
}

#[test]
fn prefill_attention_runs_on_tensor_cores_over_an_f16_cache_only() {
    use graphrun::codegen::Kv;
    use graphrun::graph::{KvType, Op};
    let m = common::tiny_model("tiny", 1);
    for (kv, want) in [
        (KvType::F16, KernelId::AttentionMma),
        (KvType::F32, KernelId::Attention { kv: Kv::F32 }),
    ] {
        let g = lower(
            &m,
            LowerOptions {
                kv,
                ..Default::default()
            },
        )
        .unwrap();
        for fuse in [true, false] {
            let s = check(&g, Phase::Prefill, fuse);
            let att: Vec<_> = s
                .groups
                .iter()
                .filter(|gr| matches!(g.node(gr.output()).op, Op::Attention { .. }))
                .collect();
            assert_eq!(att.len(), 2, "one attention group per block");
            for gr in att {
                assert_eq!(gr.kernels, vec![want], "{}", gr.name);
            }
        }
    }
}

#[test]
fn synthetic_15b_and_llama_schedules_use_catalogue_kernels() {
    for preset in ["tiny", "tiny-llama"] {
        let m = common::tiny_model(preset, 1);
        let g = lower(&m, LowerOptions::default()).unwrap();
        for phase in [Phase::Decode, Phase::Prefill] {
            check(&g, phase, true);
            check(&g, phase, false);
        }
    }
    let spec = graphrun::model::synth::SynthSpec::preset("1.5b").unwrap();
    let names: Vec<String> = spec
        .tensor_list()
        .iter()
        .map(|t| format!("{}:{}", t.0, t.2))
        .collect();
    assert!(names.contains(&"blk.0.attn_v.weight:Q6_K".to_string()));
}

#[test]
fn gate_and_up_of_different_types_are_not_paired_in_one_gemm() {
    use graphrun::model::synth;
    use graphrun::quant::GgmlType;
    // The tiny preset with layer 0's up matrix in Q8_0 (its gate stays Q5_0).
    let spec = synth::SynthSpec::preset("tiny").unwrap();
    let mut list = spec.tensor_list();
    let up = list
        .iter_mut()
        .find(|t| t.0 == "blk.0.ffn_up.weight")
        .unwrap();
    assert_eq!(up.2, GgmlType::Q5_0);
    up.2 = GgmlType::Q8_0;
    let bytes = synth::build_tensors(&spec, 1, None, list).to_bytes();
    let m = graphrun::model::ModelFile::from_bytes(bytes, "tiny-mixed.gguf").unwrap();
    let g = lower(&m, LowerOptions::default()).unwrap();
    let prefill = check(&g, Phase::Prefill, true);
    let pass_of = |node: &str| {
        let gr = prefill
            .groups
            .iter()
            .find(|gr| gr.nodes.iter().any(|n| g.node(*n).name == node))
            .unwrap();
        (gr.pass, gr.kernel_names())
    };
    // Layer 1 pairs them in one GEMM; layer 0 runs each matmul, silu and mul on its own.
    assert_eq!(
        pass_of("blk.1.ffn_swiglu"),
        ("fuse_gate_up", "prep+mmq_pair_q5_0".to_string())
    );
    assert_eq!(pass_of("blk.0.ffn_swiglu").0, "single");
    assert_eq!(pass_of("blk.0.ffn_silu").0, "single");
    assert_eq!(
        pass_of("blk.0.ffn_up"),
        ("single", "quantize_q8+mmq_q8_0".to_string())
    );
}

#[test]
fn a_batched_decode_step_takes_the_cuda_core_matmul_and_the_decode_attention() {
    use graphrun::graph::{ActSemantics, Op};
    use graphrun::sched::{batched_kernels, node_kernels};
    let m = common::tiny_model("tiny", 1);
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let g = lower(
            &m,
            LowerOptions {
                act,
                ..Default::default()
            },
        )
        .unwrap();
        for (_, n) in g.nodes() {
            let k = batched_kernels(n).unwrap();
            match &n.op {
                // At every batch size the same kernel (never the decode matvec or the
                // 128-row GEMM), so a sequence's row does not depend on the others.
                Op::MatMul { .. } => {
                    let mm: Vec<_> = k
                        .iter()
                        .filter(|k| !matches!(k, KernelId::QuantizeQ8))
                        .collect();
                    assert!(
                        matches!(mm[..], [KernelId::Matmul { .. }]),
                        "{}: {k:?}",
                        n.name
                    );
                }
                Op::Attention { .. } => {
                    assert!(matches!(k[..], [KernelId::AttentionSplit { .. }]), "{k:?}")
                }
                _ => assert_eq!(k, node_kernels(n, Phase::Prefill, 2).unwrap(), "{}", n.name),
            }
        }
    }
}

/// The synthetic tiny preset (seed 1) written as `dir/tiny.gguf`, for the `dump` CLI.
fn tiny_gguf(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tiny.gguf");
    let spec = graphrun::model::synth::SynthSpec::preset("tiny").unwrap();
    std::fs::write(
        &path,
        graphrun::model::synth::build(&spec, 1, None).to_bytes(),
    )
    .unwrap();
    path
}

#[test]
fn dump_says_what_each_prefill_kernel_computes_against_the_interpreter() {
    let dir = common::scratch("dump-numerics");
    let path = tiny_gguf(&dir);
    let p = path.to_str().unwrap();
    let legend = |kv: &str| {
        let (code, out, err) = common::graphrun(&[
            "dump", p, "--stage", "fused", "--phase", "prefill", "--kv", kv,
        ]);
        assert_eq!(code, 0, "{err}");
        let at = out
            .find("numerics (against the interpreter):\n")
            .unwrap_or_else(|| panic!("no numerics legend:\n{out}"));
        out[at..].to_string()
    };
    // An f16 cache: attention on tensor cores, still f32 attention (hi + lo split).
    let f16 = legend("f16");
    let att = f16
        .lines()
        .find(|l| l.trim_start().starts_with("attention_mma_f16 "))
        .unwrap_or_else(|| panic!("{f16}"));
    assert!(
        att.contains("f32 attention on tensor cores") && att.contains("hi + lo"),
        "{att}"
    );
    assert!(
        f16.lines()
            .any(|l| l.trim_start().starts_with("mmq_") && l.contains("integer sums are exact")),
        "{f16}"
    );
    // The Q/K/V tail and the norm prologue say they give the interpreter's bits.
    for k in ["qkv_post_f16 ", "prep "] {
        let l = f16
            .lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or_else(|| panic!("no {k}in\n{f16}"));
        assert!(l.contains("interpreter"), "{l}");
    }
    // A prefill profile's arguments are checked before any GPU is looked for.
    for (args, want) in [
        (&["--no-fuse"][..], "drop --no-fuse"),
        (&["--prompt", "100000"][..], "training context"),
    ] {
        let mut all = vec![
            "dump",
            p,
            "--stage",
            "fused",
            "--phase",
            "prefill",
            "--profile",
        ];
        all.extend_from_slice(args);
        let (code, _, err) = common::graphrun(&all);
        assert!(code != 0 && err.contains(want), "{args:?}: {err}");
    }
    // An f32 cache keeps the CUDA-core kernel, and the legend says so.
    let f32 = legend("f32");
    assert!(
        f32.lines()
            .any(|l| l.trim_start().starts_with("attention_f32 ")
                && l.contains("f32 attention on CUDA cores")),
        "{f32}"
    );
    // JSON: each group maps its kernels to the same text.
    let (code, out, err) = common::graphrun(&[
        "dump", p, "--stage", "fused", "--phase", "prefill", "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kernels"][0] == "attention_mma_f16")
        .expect("an attention group");
    assert!(
        g["numerics"]["attention_mma_f16"]
            .as_str()
            .unwrap()
            .contains("hi + lo")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn timeline_needs_a_stamped_build_and_the_fused_decode_graph() {
    let dir = common::scratch("dump-timeline");
    let path = tiny_gguf(&dir);
    let p = path.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["dump", p, "--stage", "fused", "--timeline"];
        a.extend_from_slice(extra);
        common::graphrun(&a)
    };
    if graphrun::codegen::STAMPS {
        // A diagnostic build refuses what the timeline does not record (before any GPU work).
        for (extra, want) in [
            (&["--phase", "prefill"][..], "drop --phase prefill"),
            (&["--no-fuse"][..], "--no-fuse"),
            (&["--prompt", "100000"][..], "training context"),
        ] {
            let (code, _, err) = run(extra);
            assert!(code != 0 && err.contains(want), "{extra:?}: {err}");
        }
    } else {
        // A normal build says how to get one, before it loads anything onto a GPU.
        let (code, out, err) = run(&[]);
        assert!(code != 0 && out.is_empty(), "{code} {out}");
        assert!(err.contains("GRAPHRUN_STAMPS=1"), "{err}");
    }
    let (code, _, err) = run(&["--profile"]);
    assert!(code != 0 && err.contains("cannot be used with"), "{err}");
}

#[test]
fn decode_attention_defers_its_merge_only_to_the_q8_prep_right_after_it() {
    use graphrun::graph::{ActSemantics, FaultKind};
    use graphrun::sched::deferrable_merges;
    for preset in ["tiny", "tiny-llama"] {
        let m = common::tiny_model(preset, 1);
        let mut g = lower(&m, LowerOptions::default()).unwrap();
        let n_layer = g.hparams.n_layer;
        let hd = g.hparams.head_dim;
        let s = check(&g, Phase::Decode, true);
        let d = deferrable_merges(&g, &s);
        // One per block: its attention, whose only reader is the attn_out matvec right after.
        assert_eq!(d.len(), n_layer, "{preset}");
        for (l, (a, h)) in d.iter().enumerate() {
            assert_eq!(g.node(*a).name, format!("blk.{l}.attn"));
            assert_eq!(*h, hd);
            let gi = s.group_of(g.len())[a.index()];
            assert!(matches!(s.groups[gi + 1].kind, GroupKind::MatmulAdd { .. }));
            assert_eq!(s.groups[gi + 1].kernels[0], KernelId::Prep);
        }
        // Not without fusion, not in prefill.
        assert!(deferrable_merges(&g, &check(&g, Phase::Decode, false)).is_empty());
        assert!(deferrable_merges(&g, &check(&g, Phase::Prefill, true)).is_empty());
        // An injected fault on a block's attention keeps that block's merge where it was
        // (the fault scales the attention output, which must exist when the group ends).
        let a1 = g.find("blk.1.attn").unwrap();
        g.set_fault(a1, FaultKind::Scale(2.0));
        let d = deferrable_merges(&g, &check(&g, Phase::Decode, true));
        assert_eq!(d.len(), n_layer - 1);
        assert!(d.iter().all(|(a, _)| *a != a1));
        // f32 activations: the attn_out matvec reads the attention output itself (no prep).
        let opts = LowerOptions {
            act: ActSemantics::F32,
            ..LowerOptions::default()
        };
        let g = lower(&m, opts).unwrap();
        assert!(deferrable_merges(&g, &check(&g, Phase::Decode, true)).is_empty());
    }
}
