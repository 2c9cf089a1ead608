//! The real Qwen2.5-Coder models (docs/models.md): `inspect` reports the documented
//! hyperparameters and tensor mix, and an APR made by `graphrun convert` is tensor-for-tensor
//! identical to its GGUF (and byte-compatible with apr-cli's W1 layout).

mod common;

use graphrun::model::ModelFile;
use serde_json::Value;
use std::process::Command;

fn inspect_json(path: &std::path::Path) -> Value {
    let out = Command::new(common::bin())
        .arg("inspect")
        .arg(path)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count_of(v: &Value, ty: &str) -> u64 {
    v["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == ty)
        .map_or(0, |r| r["count"].as_u64().unwrap())
}

#[test]
fn inspect_05b_reports_models_md_facts() {
    let Some(p) = common::model_05b() else { return };
    let v = inspect_json(&p);
    let h = &v["hparams"];
    assert_eq!(v["format"]["container"], "gguf");
    assert_eq!(v["format"]["version"], 3);
    assert_eq!(h["arch"], "qwen2");
    for (k, want) in [
        ("n_layer", 24),
        ("n_embd", 896),
        ("n_ff", 4864),
        ("n_head", 14),
        ("n_head_kv", 2),
        ("head_dim", 64),
        ("vocab_size", 151936),
        ("n_ctx_train", 32768),
    ] {
        assert_eq!(h[k], want, "{k}");
    }
    assert_eq!(h["rope_type"], "neox");
    assert_eq!(h["rope_base"].as_f64().unwrap(), 1e6);
    assert_eq!(h["rms_eps"].as_f64().unwrap() as f32, 1e-6f32);
    for (ty, n) in [
        ("Q5_0", 133),
        ("F32", 121),
        ("Q8_0", 13),
        ("Q6_K", 12),
        ("Q4_K", 12),
    ] {
        assert_eq!(count_of(&v, ty), n, "{ty}");
    }
    let t = &v["tokenizer"];
    assert_eq!(
        (t["model"].as_str(), t["pre"].as_str()),
        (Some("gpt2"), Some("qwen2"))
    );
    assert_eq!(
        (t["merges"].as_u64(), t["eos"].as_u64(), t["bos"].as_u64()),
        (Some(151387), Some(151645), Some(151643))
    );
    assert_eq!(t["add_bos"], false);
    assert_eq!(v["file_bytes"], 491_400_064u64);
}

#[test]
fn inspect_15b_reports_models_md_facts() {
    let Some(p) = common::model_15b() else { return };
    let v = inspect_json(&p);
    let h = &v["hparams"];
    for (k, want) in [
        ("n_layer", 28),
        ("n_embd", 1536),
        ("n_head", 12),
        ("n_head_kv", 2),
        ("head_dim", 128),
    ] {
        assert_eq!(h[k], want, "{k}");
    }
    for (ty, n) in [("Q4_K", 169), ("Q6_K", 29), ("F32", 141)] {
        assert_eq!(count_of(&v, ty), n, "{ty}");
    }
}

#[test]
fn inspect_tensor_stats_of_a_real_tensor() {
    let Some(p) = common::model_05b() else { return };
    let out = Command::new(common::bin())
        .args([
            "inspect",
            "--json",
            "--tensor",
            "blk.0.ffn_down.weight",
            "--stats",
        ])
        .arg(&p)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["tensor"]["stats"];
    assert_eq!(v["tensor"]["type"], "Q6_K");
    assert_eq!(s["count"], 896 * 4864);
    assert_eq!((s["nan"].as_u64(), s["inf"].as_u64()), (Some(0), Some(0)));
    assert!(s["std"].as_f64().unwrap() > 1e-3 && s["std"].as_f64().unwrap() < 1.0);
    assert!(s["min"].as_f64().unwrap() < 0.0 && s["max"].as_f64().unwrap() > 0.0);
    let bad = Command::new(common::bin())
        .args(["inspect", "--tensor", "nope"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tensor nope: no such tensor"));
}

/// A converted copy of the 0.5B as APR in the temp dir, removed when dropped.
struct TempApr(std::path::PathBuf);

impl Drop for TempApr {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

fn converted_apr(tag: &str) -> Option<TempApr> {
    let gguf = common::model_05b()?;
    let out = std::env::temp_dir().join(format!("graphrun-test-{}-{tag}.apr", std::process::id()));
    let st = Command::new(common::bin())
        .arg("convert")
        .arg(&gguf)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    Some(TempApr(out))
}

#[test]
fn apr_of_05b_is_identical_tensor_for_tensor_and_matches_apr_cli_layout() {
    let Some(tmp) = converted_apr("identical") else {
        return;
    };
    let apr = tmp.0.clone();
    let gguf = common::model_05b().unwrap();
    let out = Command::new(common::bin())
        .arg("diff-weights")
        .arg(&gguf)
        .arg(&apr)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("291 tensors compared: 291 identical, 0 differ"),
        "{text}"
    );

    // docs/apr-format.md §1/§2: apr-cli's file of this model is 489,278,208 bytes and
    // starts with these 44 bytes (header fields and CRC); ours must be the same.
    let bytes = std::fs::read(&apr).unwrap();
    assert_eq!(bytes.len(), 489_278_208);
    let sample = "41505200 02002000 23010000 40000000 00000000 78243a00 c0243a00 00000000 00613a00 00000000 bec08c09".replace(' ', "");
    assert_eq!(&bytes[..44], common::unhex(&sample).as_slice());

    let (g, a) = (
        ModelFile::open(&gguf).unwrap(),
        ModelFile::open(&apr).unwrap(),
    );
    let mut ah = a.hparams.clone();
    assert_eq!(ah.rope_type, Some(graphrun::model::RopeType::Neox));
    ah.rope_type = None;
    assert_eq!(g.hparams, ah);
    assert_eq!(
        g.tokenizer.token_types, a.tokenizer.token_types,
        "reconstructed token types"
    );
    assert_eq!(g.tokenizer.chat_template, a.tokenizer.chat_template);
    assert_eq!(a.tokenizer.pad, Some(151643));
    let v = inspect_json(&apr);
    assert_eq!(v["format"]["container"], "apr");
    assert_eq!(v["format"]["writer"], "w1");
    assert_eq!(v["hparams"]["n_layer"], 24);
}

#[test]
fn diff_weights_reports_a_changed_tensor_with_exit_1() {
    let Some(tmp) = converted_apr("changed") else {
        return;
    };
    let apr = tmp.0.clone();
    // Flip one byte inside blk.3.attn_q.weight of a copy.
    let m = ModelFile::open(&apr).unwrap();
    let t = m.require("blk.3.attn_q.weight").unwrap().clone();
    drop(m);
    let mut bytes = std::fs::read(&apr).unwrap();
    bytes[t.offset as usize + 5] ^= 0x10;
    let changed = apr.with_extension("changed.apr");
    std::fs::write(&changed, bytes).unwrap();
    let out = Command::new(common::bin())
        .arg("diff-weights")
        .arg(&apr)
        .arg(&changed)
        .output()
        .unwrap();
    std::fs::remove_file(&changed).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("blk.3.attn_q.weight")
            && text.contains("values")
            && text.contains("1 differ"),
        "{text}"
    );
}
