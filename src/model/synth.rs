//! Synthetic models with real shapes: Qwen2.5-shaped GGUF files with the real tensor
//! names, shapes and Q4_K_M type mix, filled with random but well-scaled blocks (finite
//! fp16 scales chosen so every weight matrix has entries of std ≈ 0.5/√fan_in, norms ≈ 1).
//! Decode speed does not depend on weight values, so these stand in for the real models on
//! machines where the real files do not fit (the GPU machine), and the `tiny` preset gives
//! tests a complete model in a few hundred kilobytes.

use super::gguf::{GgufWriter, MetaArray, MetaValue};
use super::tokdata::TokenizerData;
use crate::quant::GgmlType;

/// Shapes and type mix of a synthetic model.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub name: &'static str,
    /// `qwen2` (Q/K/V biases) or `llama` (no biases).
    pub arch: &'static str,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub vocab: usize,
    pub n_ctx: usize,
    /// Type of `token_embd`, of the bulk matrices (q, k, output-proj, gate, up), of
    /// `output.weight`, and of attn_v / ffn_down in "more bits" layers vs the others.
    pub embd: GgmlType,
    pub bulk: GgmlType,
    pub output: GgmlType,
    pub v_down_more: GgmlType,
    pub v_down_less: GgmlType,
    /// Layers whose attn_v / ffn_down get `v_down_more` (as in the real files).
    pub more_bits_layers: &'static [usize],
    /// `attn_v` in other layers uses this type (0.5B: Q5_0; k-quant models: bulk type).
    pub v_less: GgmlType,
}

impl SynthSpec {
    pub fn preset(name: &str) -> Option<SynthSpec> {
        // Layers with Q6_K/Q8_0 attn_v + ffn_down, read off the real Q4_K_M files.
        const MORE_05B: &[usize] = &[0, 1, 3, 6, 7, 8, 9, 10, 13, 16, 19, 21];
        const MORE_15B: &[usize] = &[0, 1, 5, 6, 7, 8, 9, 10, 13, 16, 19, 21, 24, 27];
        use GgmlType::*;
        Some(match name {
            "tiny" | "tiny-llama" => SynthSpec {
                name: if name == "tiny" { "tiny" } else { "tiny-llama" },
                arch: if name == "tiny" { "qwen2" } else { "llama" },
                n_layer: 2,
                n_embd: 256,
                n_ff: 512,
                n_head: 4,
                n_head_kv: 2,
                vocab: 512,
                n_ctx: 4096,
                embd: Q5_0,
                bulk: Q5_0,
                output: Q8_0,
                v_down_more: Q6_K,
                v_down_less: Q4_K,
                more_bits_layers: &[0],
                v_less: Q5_0,
            },
            "0.5b" => SynthSpec {
                name: "0.5b",
                arch: "qwen2",
                n_layer: 24,
                n_embd: 896,
                n_ff: 4864,
                n_head: 14,
                n_head_kv: 2,
                vocab: 151936,
                n_ctx: 32768,
                embd: Q5_0,
                bulk: Q5_0,
                output: Q8_0,
                v_down_more: Q6_K,
                v_down_less: Q4_K,
                more_bits_layers: MORE_05B,
                v_less: Q5_0,
            },
            "1.5b" => SynthSpec {
                name: "1.5b",
                arch: "qwen2",
                n_layer: 28,
                n_embd: 1536,
                n_ff: 8960,
                n_head: 12,
                n_head_kv: 2,
                vocab: 151936,
                n_ctx: 32768,
                embd: Q4_K,
                bulk: Q4_K,
                output: Q6_K,
                v_down_more: Q6_K,
                v_down_less: Q4_K,
                more_bits_layers: MORE_15B,
                v_less: Q4_K,
            },
            "7b" => SynthSpec {
                name: "7b",
                arch: "qwen2",
                n_layer: 28,
                n_embd: 3584,
                n_ff: 18944,
                n_head: 28,
                n_head_kv: 4,
                vocab: 152064,
                n_ctx: 32768,
                embd: Q4_K,
                bulk: Q4_K,
                output: Q6_K,
                v_down_more: Q6_K,
                v_down_less: Q4_K,
                more_bits_layers: MORE_15B,
                v_less: Q4_K,
            },
            _ => return None,
        })
    }

    pub const PRESETS: [&'static str; 5] = ["tiny", "tiny-llama", "0.5b", "1.5b", "7b"];

    fn v_type(&self, layer: usize) -> GgmlType {
        if self.more_bits_layers.contains(&layer) {
            // The 0.5B file uses Q8_0 for attn_v (896 is not a multiple of 256).
            if self.bulk == GgmlType::Q5_0 {
                GgmlType::Q8_0
            } else {
                self.v_down_more
            }
        } else {
            self.v_less
        }
    }

    fn down_type(&self, layer: usize) -> GgmlType {
        if self.more_bits_layers.contains(&layer) {
            self.v_down_more
        } else {
            self.v_down_less
        }
    }

    /// Total bytes of tensor data the file will hold.
    pub fn data_bytes(&self) -> u64 {
        self.tensor_list()
            .iter()
            .map(|(_, ne, t)| t.bytes_for(ne.iter().product()).unwrap())
            .sum()
    }

    /// (name, ne innermost first, type) for every tensor, in llama.cpp's file order.
    pub fn tensor_list(&self) -> Vec<(String, Vec<u64>, GgmlType)> {
        let (e, f, v) = (self.n_embd as u64, self.n_ff as u64, self.vocab as u64);
        let hd = (self.n_embd / self.n_head) as u64;
        let kv = hd * self.n_head_kv as u64;
        let mut out = vec![
            ("output.weight".to_string(), vec![e, v], self.output),
            ("output_norm.weight".to_string(), vec![e], GgmlType::F32),
            ("token_embd.weight".to_string(), vec![e, v], self.embd),
        ];
        let bias = self.arch == "qwen2";
        for l in 0..self.n_layer {
            let b = |s: &str| format!("blk.{l}.{s}");
            let mut layer = vec![
                (b("attn_norm.weight"), vec![e], GgmlType::F32),
                (b("attn_q.weight"), vec![e, e], self.bulk),
                (b("attn_q.bias"), vec![e], GgmlType::F32),
                (b("attn_k.weight"), vec![e, kv], self.bulk),
                (b("attn_k.bias"), vec![kv], GgmlType::F32),
                (b("attn_v.weight"), vec![e, kv], self.v_type(l)),
                (b("attn_v.bias"), vec![kv], GgmlType::F32),
                (b("attn_output.weight"), vec![e, e], self.bulk),
                (b("ffn_norm.weight"), vec![e], GgmlType::F32),
                (b("ffn_gate.weight"), vec![e, f], self.bulk),
                (b("ffn_up.weight"), vec![e, f], self.bulk),
                (b("ffn_down.weight"), vec![f, e], self.down_type(l)),
            ];
            if !bias {
                layer.retain(|(n, _, _)| !n.ends_with(".bias"));
            }
            out.extend(layer);
        }
        out
    }
}

/// xorshift64* — fast, seeded, dependency-free.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }
}

fn f16b(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

/// Random blocks of type `ty` for `n` elements whose dequantized values have std ≈ `std`.
pub fn random_tensor(ty: GgmlType, n: u64, std: f32, rng: &mut Rng) -> Vec<u8> {
    let mut buf = vec![0u8; ty.bytes_for(n).expect("whole blocks") as usize];
    if !ty.is_quantized() {
        let vals = (0..n).map(|_| 1.0 + std * 1.7 * rng.uniform());
        match ty {
            GgmlType::F32 => buf
                .iter_mut()
                .zip(vals.flat_map(f32::to_le_bytes))
                .for_each(|(b, v)| *b = v),
            _ => buf
                .iter_mut()
                .zip(vals.flat_map(f16b))
                .for_each(|(b, v)| *b = v),
        }
        return buf;
    }
    rng.fill(&mut buf);
    let bs = ty.block_bytes();
    // (offsets of fp16 scale fields, typical |scale × q| per unit d) for each layout.
    let jitter = |rng: &mut Rng| 1.0 + 0.25 * rng.uniform();
    for b in buf.chunks_exact_mut(bs) {
        match ty {
            GgmlType::Q4_0 => b[0..2].copy_from_slice(&f16b(std / 4.6 * jitter(rng))),
            GgmlType::Q5_0 => b[0..2].copy_from_slice(&f16b(std / 9.2 * jitter(rng))),
            GgmlType::Q8_0 => b[0..2].copy_from_slice(&f16b(std / 74.0 * jitter(rng))),
            GgmlType::Q4_1 | GgmlType::Q5_1 => {
                let (d, levels) = if ty == GgmlType::Q4_1 {
                    (std / 4.6, 7.5)
                } else {
                    (std / 9.2, 15.5)
                };
                b[0..2].copy_from_slice(&f16b(d));
                b[2..4].copy_from_slice(&f16b(-d * levels));
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                // Values d·sc·q − dmin·m with sc, m ~ U[0, 63]: centre with dmin ≈ d·levels.
                let levels = if ty == GgmlType::Q4_K { 7.5 } else { 15.5 };
                let d = std / (if ty == GgmlType::Q4_K { 170.0 } else { 330.0 }) * jitter(rng);
                b[0..2].copy_from_slice(&f16b(d));
                b[2..4].copy_from_slice(&f16b(d * levels));
            }
            GgmlType::Q6_K => b[208..210].copy_from_slice(&f16b(std / (74.0 * 18.5) * jitter(rng))),
            GgmlType::Q2_K => {
                b[80..82].copy_from_slice(&f16b(std / 8.0));
                b[82..84].copy_from_slice(&f16b(std / 8.0));
            }
            GgmlType::Q3_K => b[108..110].copy_from_slice(&f16b(std / 40.0)),
            GgmlType::Q8_K => b[0..4].copy_from_slice(&(std / 74.0).to_le_bytes()),
            GgmlType::Q8_1 => b[0..2].copy_from_slice(&f16b(std / 74.0)),
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => unreachable!(),
        }
    }
    buf
}

/// The tokenizer written into a synthetic model: copied from `source` when given (so real
/// prompts tokenize as in the real model), else a small built-in byte-level vocabulary
/// (256 byte symbols, a few merges, ChatML specials) padded with `[PADn]` to `vocab`.
pub fn tokenizer_kv(vocab: usize, source: Option<&TokenizerData>) -> Vec<(String, MetaValue)> {
    let (tokens, types, merges, eos, bos) = match source {
        Some(t) => (
            t.tokens.clone(),
            t.token_types.iter().map(|&x| x as i32).collect::<Vec<_>>(),
            t.merges.clone(),
            t.eos.unwrap_or(0),
            t.bos.unwrap_or(0),
        ),
        None => builtin_vocab(),
    };
    let mut tokens = tokens;
    let mut types = types;
    tokens.truncate(vocab);
    types.truncate(vocab);
    while tokens.len() < vocab {
        tokens.push(format!("[PAD{}]", tokens.len()));
        types.push(5);
    }
    let strs = |v: Vec<String>| MetaValue::Array(MetaArray::Str(v.iter().collect()));
    let mut kv = vec![
        (
            "tokenizer.ggml.model".to_string(),
            MetaValue::Str("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".to_string(),
            MetaValue::Str("qwen2".into()),
        ),
        ("tokenizer.ggml.tokens".to_string(), strs(tokens)),
        (
            "tokenizer.ggml.token_type".to_string(),
            MetaValue::Array(MetaArray::I32(types)),
        ),
        ("tokenizer.ggml.merges".to_string(), strs(merges)),
        (
            "tokenizer.ggml.eos_token_id".to_string(),
            MetaValue::U32(eos),
        ),
        (
            "tokenizer.ggml.padding_token_id".to_string(),
            MetaValue::U32(bos),
        ),
        (
            "tokenizer.ggml.bos_token_id".to_string(),
            MetaValue::U32(bos),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            MetaValue::Bool(false),
        ),
    ];
    if let Some(t) = source.and_then(|s| s.chat_template.clone()) {
        kv.push(("tokenizer.chat_template".to_string(), MetaValue::Str(t)));
    }
    kv
}

/// GPT-2's byte → printable-unicode map (bytes that are printable map to themselves).
pub fn byte_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        map[b as usize] = if printable {
            char::from_u32(b).expect("latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("valid")
        };
    }
    map
}

fn builtin_vocab() -> (Vec<String>, Vec<i32>, Vec<String>, u32, u32) {
    let b2u = byte_to_unicode();
    let mut tokens: Vec<String> = b2u.iter().map(|c| c.to_string()).collect();
    let pairs = [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("i", "n"),
        ("Ġ", "a"),
        ("e", "r"),
        ("o", "n"),
        ("Ġ", "s"),
    ];
    let mut merges = Vec::new();
    for (a, b) in pairs {
        merges.push(format!("{a} {b}"));
        tokens.push(format!("{a}{b}"));
    }
    let mut types = vec![1; tokens.len()];
    let bos = tokens.len() as u32;
    for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(s.to_string());
        types.push(3);
    }
    (tokens, types, merges, bos + 2, bos)
}

/// Builds the GGUF of a synthetic model. Weights are generated tensor by tensor from `seed`.
pub fn build(spec: &SynthSpec, seed: u64, tokenizer: Option<&TokenizerData>) -> GgufWriter {
    build_tensors(spec, seed, tokenizer, spec.tensor_list())
}

/// `build` with the tensors of `list` (e.g. `spec.tensor_list()` with a type changed, for
/// tests of files whose types mix in ways the presets do not).
pub fn build_tensors(
    spec: &SynthSpec,
    seed: u64,
    tokenizer: Option<&TokenizerData>,
    list: Vec<(String, Vec<u64>, GgmlType)>,
) -> GgufWriter {
    let mut w = GgufWriter::new();
    let u = |x: usize| MetaValue::U32(x as u32);
    let a = spec.arch;
    w.kv("general.architecture", MetaValue::Str(a.into()))
        .kv(
            "general.name",
            MetaValue::Str(format!("graphrun synthetic {a} {}", spec.name)),
        )
        .kv("general.file_type", MetaValue::U32(15))
        .kv(&format!("{a}.block_count"), u(spec.n_layer))
        .kv(&format!("{a}.context_length"), u(spec.n_ctx))
        .kv(&format!("{a}.embedding_length"), u(spec.n_embd))
        .kv(&format!("{a}.feed_forward_length"), u(spec.n_ff))
        .kv(&format!("{a}.attention.head_count"), u(spec.n_head))
        .kv(&format!("{a}.attention.head_count_kv"), u(spec.n_head_kv))
        .kv(&format!("{a}.rope.freq_base"), MetaValue::F32(1_000_000.0))
        .kv(
            &format!("{a}.attention.layer_norm_rms_epsilon"),
            MetaValue::F32(1e-6),
        );
    for (k, v) in tokenizer_kv(spec.vocab, tokenizer) {
        w.kv(&k, v);
    }
    let mut rng = Rng::new(seed);
    for (name, ne, ty) in list {
        let n: u64 = ne.iter().product();
        let std = if name.ends_with("norm.weight") {
            0.1
        } else if name.ends_with(".bias") || name == "token_embd.weight" {
            0.02
        } else {
            0.5 / (ne[0] as f32).sqrt()
        };
        let mut data = random_tensor(ty, n, std, &mut rng);
        if name.ends_with(".bias") {
            // Biases are centred on zero, not on one like norm weights.
            for c in data.chunks_exact_mut(4) {
                let v = f32::from_le_bytes(c.try_into().unwrap()) - 1.0;
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        w.tensor(&name, &ne, ty, data);
    }
    w
}
