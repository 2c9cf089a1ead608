//! Lowering: real and synthetic models become the documented static graph; GGUF and APR of
//! the same model lower to the identical graph; architectures are data in graph/.

mod common;

use graphrun::graph::{ActSemantics, DumpFormat, LowerOptions, Op, dump, lower};
use graphrun::model::ModelFile;
use graphrun::model::gguf::GgufWriter;
use graphrun::model::synth::{SynthSpec, build};

#[test]
fn real_05b_lowers_to_the_documented_node_names() {
    let Some(p) = common::model_05b() else { return };
    let m = ModelFile::open(p).unwrap();
    let g = lower(&m, LowerOptions::default()).unwrap();
    // 1 embedding + 21 nodes per block + output_norm + logits.
    assert_eq!(g.len(), 1 + 24 * 21 + 2);
    for name in [
        "token_embd",
        "blk.3.attn_norm",
        "blk.3.attn_q",
        "blk.3.attn_q_bias",
        "blk.3.attn_rope_q",
        "blk.3.attn_k_cache",
        "blk.3.attn",
        "blk.3.attn_out",
        "blk.3.attn_residual",
        "blk.3.ffn_gate",
        "blk.3.ffn_silu",
        "blk.3.ffn_swiglu",
        "blk.3.ffn_down",
        "blk.3.ffn_residual",
        "output_norm",
        "logits",
    ] {
        assert!(g.find(name).is_some(), "missing node {name}");
    }
    let gate = g.node(g.find("blk.3.ffn_gate").unwrap());
    assert_eq!(gate.width, 4864);
    assert_eq!(
        gate.op,
        Op::MatMul {
            act: ActSemantics::Q8
        }
    );
    assert_eq!(gate.weight.as_ref().unwrap().name, "blk.3.ffn_gate.weight");
    let rope = g.node(g.find("blk.0.attn_rope_k").unwrap());
    assert!(matches!(
        rope.op,
        Op::Rope {
            n_head: 2,
            head_dim: 64,
            ..
        }
    ));
    assert_eq!(g.node(g.output()).name, "logits");
    assert_eq!(g.node(g.output()).width, 151936);
}

#[test]
fn gguf_and_apr_of_the_same_model_lower_to_identical_graphs() {
    let Some(p) = common::model_05b() else { return };
    let gguf = ModelFile::open(p).unwrap();
    let apr = ModelFile::from_bytes(
        graphrun::model::apr_write::to_apr_bytes(&gguf).unwrap(),
        "0.5b.apr",
    )
    .unwrap();
    for act in [ActSemantics::Q8, ActSemantics::F32] {
        let (a, b) = (
            lower(
                &gguf,
                LowerOptions {
                    act,
                    ..Default::default()
                },
            )
            .unwrap(),
            lower(
                &apr,
                LowerOptions {
                    act,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        for f in [DumpFormat::Text, DumpFormat::Json, DumpFormat::Dot] {
            assert_eq!(
                dump(&a, f, &graphrun::graph::NodePattern::all()),
                dump(&b, f, &graphrun::graph::NodePattern::all()),
                "{f:?} dumps differ ({})",
                act.name()
            );
        }
    }
}

#[test]
fn llama_architecture_is_data_without_bias_nodes() {
    let m = common::tiny_model("tiny-llama", 3);
    let g = lower(&m, LowerOptions::default()).unwrap();
    assert_eq!(g.arch, "llama");
    assert!(g.find("blk.0.attn_q_bias").is_none());
    let rope = g.node(g.find("blk.1.attn_rope_q").unwrap());
    assert!(
        matches!(
            rope.op,
            Op::Rope {
                rope: graphrun::model::RopeType::Norm,
                ..
            }
        ),
        "{:?}",
        rope.op
    );
    assert_eq!(g.len(), 1 + 2 * 18 + 2);
}

#[test]
fn tied_output_falls_back_to_the_embedding() {
    let spec = SynthSpec::preset("tiny").unwrap();
    let mut w = build(&spec, 5, None);
    w.tensors.retain(|(n, ..)| n != "output.weight");
    let m = ModelFile::from_bytes(w.to_bytes(), "tied.gguf").unwrap();
    let g = lower(&m, LowerOptions::default()).unwrap();
    assert_eq!(
        g.node(g.output()).weight.as_ref().unwrap().name,
        "token_embd.weight"
    );
}

#[test]
fn missing_or_misshapen_weights_are_errors_naming_the_tensor() {
    let spec = SynthSpec::preset("tiny").unwrap();
    let mut w: GgufWriter = build(&spec, 5, None);
    w.tensors.retain(|(n, ..)| n != "blk.1.attn_k.bias");
    let m = ModelFile::from_bytes(w.to_bytes(), "nobias.gguf").unwrap();
    let e = lower(&m, LowerOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("`blk.1.attn_k.bias`") && e.contains("blk.1.attn_k_bias"),
        "{e}"
    );

    let mut w = build(&spec, 5, None);
    for t in w
        .tensors
        .iter_mut()
        .filter(|t| t.0 == "blk.0.ffn_norm.weight")
    {
        t.1 = vec![128];
        t.3.truncate(512);
    }
    let m = ModelFile::from_bytes(w.to_bytes(), "badnorm.gguf").unwrap();
    let e = lower(&m, LowerOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("`blk.0.ffn_norm.weight`")
            && e.contains("expected shape [256]")
            && e.contains("found [128]"),
        "{e}"
    );
}

#[test]
fn dot_dump_renders_with_graphviz_when_present() {
    let m = common::tiny_model("tiny", 1);
    let g = lower(&m, LowerOptions::default()).unwrap();
    let dot = dump(&g, DumpFormat::Dot, &graphrun::graph::NodePattern::all());
    assert!(dot.starts_with("digraph") && dot.contains("subgraph cluster_blk_1"));
    let edges = dot.matches(" -> ").count();
    let expected: usize = g.nodes().map(|(_, n)| n.inputs.len().max(1)).sum();
    assert_eq!(edges, expected);
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIP rendering: Graphviz `dot` not installed");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<svg"));
}
