//! APR v2: our W1 writer round-trips through our reader, W2 (native) files with HF names,
//! aprender dtype codes and a CRC footer are understood, and corrupted files give clear
//! errors naming the file and the field or tensor.

mod common;

use common::Rng;
use graphrun::model::apr::{self, header_crc};
use graphrun::model::apr_write::to_apr_bytes;
use graphrun::model::crc32::crc32;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::model::{FileFormat, ModelFile};
use graphrun::quant::GgmlType;

fn tiny_gguf() -> ModelFile {
    let spec = SynthSpec::preset("tiny").unwrap();
    ModelFile::from_bytes(build(&spec, 7, None).to_bytes(), "tiny.gguf").unwrap()
}

#[test]
fn w1_round_trip_keeps_every_tensor_and_hyperparameter() {
    let g = tiny_gguf();
    let a = ModelFile::from_bytes(to_apr_bytes(&g).unwrap(), "tiny.apr").unwrap();
    assert!(matches!(
        a.format,
        FileFormat::Apr {
            writer: apr::AprWriter::RawImport,
            ..
        }
    ));
    // GGUF does not store the RoPE type (the graph/ description decides); APR states it.
    assert_eq!(a.hparams.rope_type, Some(graphrun::model::RopeType::Neox));
    let mut ah = a.hparams.clone();
    ah.rope_type = None;
    assert_eq!(ah, g.hparams);
    assert_eq!(a.tensors.len(), g.tensors.len());
    for t in &g.tensors {
        let u = a.require(&t.name).unwrap();
        assert_eq!((u.dtype, &u.shape), (t.dtype, &t.shape), "{}", t.name);
        assert_eq!(a.tensor_bytes(u), g.tensor_bytes(t), "{}", t.name);
        assert_eq!(u.offset % 64, 0, "{} is not 64-aligned", t.name);
    }
    // Token types are reconstructed exactly; ids and merges identical.
    assert_eq!(a.tokenizer.tokens, g.tokenizer.tokens);
    assert_eq!(a.tokenizer.merges, g.tokenizer.merges);
    assert_eq!(a.tokenizer.token_types, g.tokenizer.token_types);
    assert_eq!(
        (a.tokenizer.bos, a.tokenizer.eos, a.tokenizer.pad),
        (g.tokenizer.bos, g.tokenizer.eos, g.tokenizer.pad)
    );
    assert_eq!(a.tokenizer.pre.as_deref(), Some("qwen2"));
    assert!(!a.tokenizer.add_bos);
}

/// Builds an APR v2 file by hand (so tests can make W2 files and corrupt any field).
struct AprBuilder {
    flags: u16,
    json: String,
    /// (name, dtype code, dims outermost first, bytes)
    tensors: Vec<(String, u8, Vec<u64>, Vec<u8>)>,
    footer: bool,
}

impl AprBuilder {
    fn bytes(&self) -> Vec<u8> {
        let al = |x: usize| x.div_ceil(64) * 64;
        let mut index = Vec::new();
        let mut off = 0usize;
        let mut offs = Vec::new();
        for (name, code, dims, data) in &self.tensors {
            index.extend_from_slice(&(name.len() as u16).to_le_bytes());
            index.extend_from_slice(name.as_bytes());
            index.push(*code);
            index.push(dims.len() as u8);
            for d in dims {
                index.extend_from_slice(&d.to_le_bytes());
            }
            index.extend_from_slice(&(off as u64).to_le_bytes());
            index.extend_from_slice(&(data.len() as u64).to_le_bytes());
            offs.push(off);
            off = al(off + data.len());
        }
        let index_off = 64 + al(self.json.len());
        let data_off = al(index_off + index.len());
        let mut f = vec![0u8; data_off + off];
        f[0..4].copy_from_slice(b"APR\0");
        f[4] = 2;
        f[6..8].copy_from_slice(&self.flags.to_le_bytes());
        f[8..12].copy_from_slice(&(self.tensors.len() as u32).to_le_bytes());
        f[12..20].copy_from_slice(&64u64.to_le_bytes());
        f[20..24].copy_from_slice(&(self.json.len() as u32).to_le_bytes());
        f[24..32].copy_from_slice(&(index_off as u64).to_le_bytes());
        f[32..40].copy_from_slice(&(data_off as u64).to_le_bytes());
        let crc = header_crc(&f[..64]);
        f[40..44].copy_from_slice(&crc.to_le_bytes());
        f[64..64 + self.json.len()].copy_from_slice(self.json.as_bytes());
        f[index_off..index_off + index.len()].copy_from_slice(&index);
        for ((_, _, _, data), o) in self.tensors.iter().zip(offs) {
            f[data_off + o..data_off + o + data.len()].copy_from_slice(data);
        }
        if self.footer {
            let c = crc32(&f);
            f.extend_from_slice(&c.to_le_bytes());
        }
        f
    }
}

fn w2_json() -> String {
    serde_json::json!({
        "model_type": "Auto", "name": "t", "architecture": "qwen2",
        "hidden_size": 64, "num_layers": 1, "num_heads": 4, "num_kv_heads": 2,
        "vocab_size": 2, "intermediate_size": 128, "max_position_embeddings": 256,
        "rope_theta": 1000000.0, "rope_type": 2, "rms_norm_eps": 1e-6,
        "tokenizer.vocabulary": ["a", "b"], "tokenizer.vocab_size": 2,
        "tokenizer.model_type": "gpt2", "tokenizer.merges": [],
        "tokenizer.bos_token_id": 0, "tokenizer.eos_token_id": 1, "tied_embeddings": true
    })
    .to_string()
}

fn w2_builder() -> AprBuilder {
    let q8 = vec![0x11u8; 34 * 2];
    AprBuilder {
        flags: apr::FLAG_ROW_MAJOR,
        json: w2_json(),
        tensors: vec![
            ("lm_head.weight".into(), 0, vec![2, 64], vec![0u8; 512]),
            (
                "model.embed_tokens.weight".into(),
                1,
                vec![2, 64],
                vec![0u8; 256],
            ),
            (
                "model.layers.0.mlp.down_proj.weight".into(),
                128,
                vec![1, 64],
                q8,
            ),
            (
                "model.layers.0.self_attn.q_proj.bias".into(),
                0,
                vec![64],
                vec![0u8; 256],
            ),
        ],
        footer: true,
    }
}

#[test]
fn w2_native_file_with_hf_names_and_footer_is_read() {
    let m = ModelFile::from_bytes(w2_builder().bytes(), "w2.apr").unwrap();
    assert!(matches!(
        m.format,
        FileFormat::Apr {
            writer: apr::AprWriter::Native,
            ..
        }
    ));
    assert_eq!(m.hparams.n_layer, 1);
    assert_eq!(m.hparams.n_head_kv, 2);
    assert_eq!(m.require("output.weight").unwrap().dtype, GgmlType::F32);
    assert_eq!(m.require("token_embd.weight").unwrap().dtype, GgmlType::F16);
    // Code 128 with Q8_0's size is a stamped GGML Q8_0 tensor.
    assert_eq!(
        m.require("blk.0.ffn_down.weight").unwrap().dtype,
        GgmlType::Q8_0
    );
    assert!(m.tensor("blk.0.attn_q.bias").is_some());
    assert_eq!(m.tokenizer.model, "gpt2");
}

#[test]
fn apr_corruptions_name_file_and_field() {
    let good = w2_builder();
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "header byte flipped",
            Box::new(|b| b[9] ^= 1),
            "field `header_crc32` at byte offset 40",
        ),
        (
            "payload byte flipped",
            Box::new(|b| {
                let n = b.len();
                b[n - 10] ^= 1
            }),
            "field `footer crc32`",
        ),
        ("apr v1 magic", Box::new(|b| b[3] = b'1'), "APR v1"),
        ("truncated", Box::new(|b| b.truncate(50)), "field `"),
    ];
    for (what, f, expect) in cases {
        let mut b = good.bytes();
        f(&mut b);
        let e = ModelFile::from_bytes(b, "w2.apr")
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        assert!(e.starts_with("w2.apr") && e.contains(expect), "{what}: {e}");
    }
    // Compressed payloads are refused clearly.
    let mut c = w2_builder();
    c.flags |= apr::FLAG_LZ4;
    let e = ModelFile::from_bytes(c.bytes(), "c.apr")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("LZ4-compressed"), "{e}");
}

#[test]
fn tensor_size_that_fits_no_dtype_reading_is_an_error_naming_the_tensor() {
    for (code, size, expect) in [
        (12u8, 100usize, "matches no reading of dtype code 12"),
        // W1's defect: a Q3_K tensor written with code 0 (F32) has the wrong size.
        (0, 110, "matches no reading of dtype code 0"),
        (200, 64, "unknown dtype code 200"),
    ] {
        let mut b = w2_builder();
        b.tensors[3] = (
            "model.layers.0.self_attn.q_proj.bias".into(),
            code,
            vec![if code == 0 { 256 } else { 64 }],
            vec![0u8; size],
        );
        let e = ModelFile::from_bytes(b.bytes(), "w2.apr")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("model.layers.0.self_attn.q_proj.bias.dtype") && e.contains(expect),
            "{e}"
        );
    }
    // Aprender-only dtypes resolve but are refused with the tensor named.
    let mut b = w2_builder();
    b.tensors[3] = (
        "model.layers.0.self_attn.q_proj.bias".into(),
        6,
        vec![64],
        vec![0u8; 64],
    );
    let e = ModelFile::from_bytes(b.bytes(), "w2.apr")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`blk.0.attn_q.bias`") && e.contains("I8"), "{e}");
}

#[test]
fn random_apr_mutations_never_panic() {
    let g = tiny_gguf();
    let base = to_apr_bytes(&g).unwrap();
    let data_off = u64::from_le_bytes(base[32..40].try_into().unwrap()) as usize;
    let mut rng = Rng(99);
    let mut rejected = 0;
    for i in 0..1500 {
        let mut b = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data_off as u64) as usize;
            b[at] = rng.next_u64() as u8;
        }
        if rng.below(2) == 0 {
            // Re-seal the header so mutations reach the metadata and index parsers.
            let c = header_crc(&b[..64]);
            b[40..44].copy_from_slice(&c.to_le_bytes());
        }
        match std::panic::catch_unwind(|| ModelFile::from_bytes(b.clone(), "m.apr").map(|_| ())) {
            Err(_) => panic!("mutation {i} panicked"),
            Ok(Err(e)) => {
                assert!(e.to_string().starts_with("m.apr"), "{e}");
                rejected += 1;
            }
            Ok(Ok(())) => {}
        }
    }
    assert!(rejected > 1000, "only {rejected} rejected");
}
