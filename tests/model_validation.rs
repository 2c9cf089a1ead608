//! Model files that parse but contradict themselves: every tensor's shape and type is
//! checked against the hyperparameters when the model is lowered, hyperparameters are
//! checked for plausibility when the file is opened, and unused tensors are refused. Each
//! case builds the bad file and asserts the error names the tensor or key, the expected and
//! the found value; the CLI cases run the binary and assert exit status 2.

mod common;

use graphrun::graph::{LowerOptions, lower};
use graphrun::model::ModelFile;
use graphrun::model::apr_write::{to_apr_bytes_with_json, w1_metadata_json};
use graphrun::model::gguf::{GgufWriter, MetaValue};
use graphrun::model::synth::{Rng, SynthSpec, build, random_tensor, tokenizer_kv};
use graphrun::quant::GgmlType;

/// The tiny Qwen2-shaped synthetic model: 2 blocks, hidden 256, FFN 512, 4 heads (2 KV,
/// head dim 64), vocabulary 512.
fn tiny() -> GgufWriter {
    build(&SynthSpec::preset("tiny").unwrap(), 11, None)
}

fn set_kv(w: &mut GgufWriter, key: &str, v: MetaValue) {
    match w.metadata.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = v,
        None => w.metadata.push((key.to_string(), v)),
    }
}

/// Gives tensor `name` a new shape (`ne`, innermost first) and type, with fresh data.
fn reshape(w: &mut GgufWriter, name: &str, ne: &[u64], ty: GgmlType) {
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.0 == name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    t.1 = ne.to_vec();
    t.2 = ty;
    t.3 = random_tensor(ty, ne.iter().product(), 0.1, &mut Rng::new(3));
}

fn open(w: &GgufWriter, name: &str) -> Result<ModelFile, String> {
    ModelFile::from_bytes(w.to_bytes(), name).map_err(|e| e.to_string())
}

/// The error lowering gives (opening must succeed).
fn lower_err(w: &GgufWriter) -> String {
    let m = open(w, "bad.gguf").expect("the file opens");
    match lower(&m, LowerOptions::default()) {
        Ok(_) => panic!("the contradictory model lowered"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "expected `{p}` in: {e}");
    }
}

#[test]
fn the_tiny_model_is_consistent() {
    let m = open(&tiny(), "tiny.gguf").unwrap();
    let g = lower(&m, LowerOptions::default()).unwrap();
    assert_eq!(g.hparams.vocab_size, 512);
    let m = open(
        &build(&SynthSpec::preset("tiny-llama").unwrap(), 1, None),
        "l.gguf",
    )
    .unwrap();
    lower(&m, LowerOptions::default()).unwrap();
}

#[test]
fn embedding_with_fewer_rows_than_the_vocabulary_is_an_error() {
    let mut w = tiny();
    reshape(&mut w, "token_embd.weight", &[256, 64], GgmlType::Q5_0);
    assert_has(
        &lower_err(&w),
        &[
            "tensor `token_embd.weight`",
            "expected shape [512, 256]",
            "found [64, 256]",
        ],
    );
}

#[test]
fn embedding_of_the_wrong_width_is_an_error() {
    let mut w = tiny();
    reshape(&mut w, "token_embd.weight", &[288, 512], GgmlType::Q8_0);
    assert_has(
        &lower_err(&w),
        &[
            "`token_embd.weight`",
            "qwen2.embedding_length = 256",
            "found [512, 288]",
        ],
    );
}

#[test]
fn stated_vocabulary_must_match_the_embedding_rows() {
    let mut w = tiny();
    set_kv(&mut w, "qwen2.vocab_size", MetaValue::U32(513));
    assert_has(
        &lower_err(&w),
        &[
            "`token_embd.weight`",
            "qwen2.vocab_size",
            "[513, 256]",
            "found [512, 256]",
        ],
    );
}

#[test]
fn tokenizer_larger_than_the_embedding_is_an_error() {
    // The file says the vocabulary is 512 (the tensors' rows) but carries 600 tokens: ids
    // 512..599 would index past the embedding.
    let mut w = tiny();
    w.metadata.retain(|(k, _)| !k.starts_with("tokenizer."));
    for (k, v) in tokenizer_kv(600, None) {
        w.kv(&k, v);
    }
    set_kv(&mut w, "qwen2.vocab_size", MetaValue::U32(512));
    assert_has(
        &lower_err(&w),
        &["`token_embd.weight`", "512 rows", "600 tokens"],
    );
}

#[test]
fn untied_output_must_cover_the_vocabulary() {
    let mut w = tiny();
    reshape(&mut w, "output.weight", &[256, 500], GgmlType::Q8_0);
    assert_has(
        &lower_err(&w),
        &[
            "`output.weight`",
            "expected shape [512, 256]",
            "the vocabulary of 512",
            "found [500, 256]",
        ],
    );
}

#[test]
fn ffn_width_contradicting_the_tensors_names_the_tensor_and_key() {
    let mut w = tiny();
    set_kv(&mut w, "qwen2.feed_forward_length", MetaValue::U32(511));
    assert_has(
        &lower_err(&w),
        &[
            "`blk.0.ffn_gate.weight`",
            "expected shape [511, 256]",
            "qwen2.feed_forward_length = 511",
            "found [512, 256]",
        ],
    );
}

#[test]
fn head_count_contradicting_the_kv_tensors_is_an_error() {
    // 8 heads over hidden 256 give head dim 32: K should have 2 × 32 = 64 rows, not 128.
    let mut w = tiny();
    set_kv(&mut w, "qwen2.attention.head_count", MetaValue::U32(8));
    assert_has(
        &lower_err(&w),
        &[
            "`blk.0.attn_k.weight`",
            "expected shape [64, 256]",
            "2 KV heads × head dimension 32",
            "found [128, 256]",
        ],
    );
}

#[test]
fn stated_head_dimension_contradicting_q_is_an_error() {
    let mut w = tiny();
    set_kv(&mut w, "qwen2.attention.key_length", MetaValue::U32(48));
    assert_has(
        &lower_err(&w),
        &[
            "`blk.0.attn_q.weight`",
            "[192, 256]",
            "4 heads × head dimension 48",
            "found [256, 256]",
        ],
    );
}

#[test]
fn rope_dimensions_and_value_length_must_equal_the_head_dimension() {
    for (key, v) in [
        ("qwen2.rope.dimension_count", 32u32),
        ("qwen2.attention.value_length", 128),
    ] {
        let mut w = tiny();
        set_kv(&mut w, key, MetaValue::U32(v));
        assert_has(
            &lower_err(&w),
            &[
                &format!("field `{key}`"),
                "expected the head dimension 64",
                &format!("found {v}"),
            ],
        );
        // The value a real Llama file states is accepted.
        set_kv(&mut w, key, MetaValue::U32(64));
        lower(&open(&w, "ok.gguf").unwrap(), LowerOptions::default()).unwrap();
    }
}

#[test]
fn bias_and_norm_shapes_and_types_are_checked() {
    let mut w = tiny();
    reshape(&mut w, "blk.1.attn_q.bias", &[128], GgmlType::F32);
    assert_has(
        &lower_err(&w),
        &["`blk.1.attn_q.bias`", "expected shape [256]", "found [128]"],
    );
    let mut w = tiny();
    reshape(&mut w, "blk.0.ffn_norm.weight", &[256], GgmlType::Q8_0);
    assert_has(
        &lower_err(&w),
        &["`blk.0.ffn_norm.weight`", "float type", "found Q8_0"],
    );
}

#[test]
fn block_count_below_the_files_blocks_is_an_error_naming_the_unused_tensors() {
    let mut w = tiny();
    set_kv(&mut w, "qwen2.block_count", MetaValue::U32(1));
    assert_has(
        &lower_err(&w),
        &[
            "`blk.1.",
            "not used by the model graph",
            "tensors for 2 blocks but qwen2.block_count = 1",
        ],
    );
}

#[test]
fn block_count_above_the_files_blocks_says_the_block_is_absent() {
    let mut w = tiny();
    set_kv(&mut w, "qwen2.block_count", MetaValue::U32(3));
    assert_has(
        &lower_err(&w),
        &[
            "`blk.2.attn_norm.weight`",
            "missing",
            "no `blk.2.*` tensors",
            "qwen2.block_count = 3",
        ],
    );
}

#[test]
fn llama_architecture_on_qwen_tensors_refuses_the_unused_biases() {
    let mut w = tiny();
    for (k, v) in w.metadata.iter_mut() {
        if let Some(rest) = k.strip_prefix("qwen2.") {
            *k = format!("llama.{rest}");
        }
        if k == "general.architecture" {
            *v = MetaValue::Str("llama".into());
        }
    }
    assert_has(
        &lower_err(&w),
        &["`blk.0.attn_q.bias`", "llama graph", "general.architecture"],
    );
}

#[test]
fn stray_tensors_are_refused() {
    let mut w = tiny();
    w.tensor("rope_freqs.weight", &[32], GgmlType::F32, vec![0; 128]);
    assert_has(&lower_err(&w), &["`rope_freqs.weight`", "not used"]);
}

#[test]
fn implausible_hyperparameters_are_refused_when_the_file_opens() {
    let cases: &[(&str, MetaValue, &[&str])] = &[
        (
            "qwen2.attention.head_count_kv",
            MetaValue::U32(3),
            &["4 query heads cannot be grouped over 3 KV heads"],
        ),
        (
            "qwen2.embedding_length",
            MetaValue::U32(250),
            &[
                "field `qwen2.embedding_length`",
                "hidden size 250 is not divisible by the 4 heads",
            ],
        ),
        (
            "qwen2.embedding_length",
            MetaValue::U64(1 << 63),
            &[
                "field `qwen2.embedding_length`",
                "9223372036854775808",
                "hidden size",
            ],
        ),
        (
            "qwen2.attention.key_length",
            MetaValue::U32(33),
            &["field `qwen2.attention.key_length`", "must be even"],
        ),
        (
            "qwen2.block_count",
            MetaValue::I32(-1),
            &[
                "field `qwen2.block_count`",
                "non-negative integer, found -1",
            ],
        ),
        (
            "qwen2.context_length",
            MetaValue::U32(0),
            &["field `qwen2.context_length`", "context length"],
        ),
        (
            "qwen2.attention.layer_norm_rms_epsilon",
            MetaValue::F32(f32::NAN),
            &["epsilon"],
        ),
        (
            "general.architecture",
            MetaValue::Str(String::new()),
            &["field `general.architecture`", "is empty"],
        ),
    ];
    for (key, v, expect) in cases {
        let mut w = tiny();
        set_kv(&mut w, key, v.clone());
        let e = open(&w, "hp.gguf")
            .err()
            .unwrap_or_else(|| panic!("{key}: accepted"));
        assert!(e.starts_with("hp.gguf"), "{e}");
        assert_has(&e, expect);
    }
}

/// The tiny model as APR with one metadata value replaced (raw JSON text).
fn apr_with(key: &str, value: &str) -> Vec<u8> {
    let m = open(&tiny(), "tiny.gguf").unwrap();
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&w1_metadata_json(&m).unwrap()).unwrap();
    json.insert(key.to_string(), serde_json::from_str(value).unwrap());
    let text = serde_json::Value::Object(json).to_string();
    to_apr_bytes_with_json(&m, &text).unwrap()
}

#[test]
fn apr_hyperparameters_are_checked_with_the_apr_key_named() {
    for (key, value, expect) in [
        ("hidden_size", "9223372036854775808", "hidden size"),
        ("hidden_size", "-5", "non-negative integer"),
        (
            "num_attention_heads",
            "[1, 2]",
            "non-negative integer, found [1,2]",
        ),
        ("intermediate_size", "4294967296000", "FFN width"),
        ("rope_type", "1", "expected 0 (norm) or 2 (neox)"),
    ] {
        let e = ModelFile::from_bytes(apr_with(key, value), "hp.apr")
            .err()
            .unwrap_or_else(|| panic!("{key} = {value}: accepted"))
            .to_string();
        assert_has(&e, &[&format!("field `{key}`"), expect]);
    }
    // Contradictions with the tensors are caught at lowering, naming the APR key.
    let m = ModelFile::from_bytes(apr_with("intermediate_size", "511"), "ff.apr").unwrap();
    let e = lower(&m, LowerOptions::default()).unwrap_err().to_string();
    assert_has(
        &e,
        &[
            "`blk.0.ffn_gate.weight`",
            "intermediate_size = 511",
            "found [512, 256]",
        ],
    );
}

fn write(dir: &std::path::Path, name: &str, w: &GgufWriter) -> String {
    let p = dir.join(name);
    std::fs::write(&p, w.to_bytes()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn cli_refuses_a_64_row_embedding_with_exit_2_instead_of_panicking() {
    let dir = common::scratch("emb64");
    let mut w = tiny();
    reshape(&mut w, "token_embd.weight", &[256, 64], GgmlType::Q5_0);
    let p = write(&dir, "emb64.gguf", &w);
    for args in [
        vec!["run", &p, "--interp", "-n", "2", "-p", "the"],
        vec!["dump", &p],
    ] {
        let (code, _, err) = common::graphrun(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_has(
            &err,
            &["`token_embd.weight`", "[512, 256]", "found [64, 256]"],
        );
    }
}

#[test]
fn cli_names_directories_and_devices_instead_of_no_such_device() {
    let dir = common::scratch("notafile");
    let d = dir.to_str().unwrap();
    for (path, expect) in [
        (d, "is a directory"),
        ("/dev/null", "is not a regular file"),
    ] {
        let (code, _, err) = common::graphrun(&["inspect", path]);
        assert_eq!(code, 2, "{err}");
        assert_has(&err, &[path, expect]);
        assert!(!err.contains("os error 19"), "{err}");
    }
}

#[test]
fn cli_inspect_prints_the_rope_type_plainly_and_empty_names_visibly() {
    let dir = common::scratch("inspect-names");
    let mut w = tiny();
    w.kv("", MetaValue::U8(1));
    set_kv(
        &mut w,
        "tokenizer.ggml.model",
        MetaValue::Str(String::new()),
    );
    let p = write(&dir, "names.gguf", &w);
    let (code, out, err) = common::graphrun(&["inspect", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rope neox base"), "{out}");
    assert!(!out.contains("Some("), "{out}");
    assert!(out.contains("tokenizer:   (empty) (pre qwen2)"), "{out}");
    assert!(out.contains("  (empty) = 1"), "{out}");
}
