//! Byte-level BPE tokenizer built from a model file's tokenizer data (`tokenizer.ggml.*`):
//! special tokens matched first, then the architecture's pre-tokenizer split, then BPE
//! merges by rank. Detokenization maps token strings back to bytes; a `StreamDecoder`
//! emits only complete UTF-8 sequences while streaming.

pub mod file;
mod pretok;
mod unicode_tables;

pub use pretok::split as pre_split;

use crate::error::{Error, Result};
use crate::model::synth::byte_to_unicode;
use crate::model::{TokenType, TokenizerData};
use std::collections::{BinaryHeap, HashMap};

pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    /// (left id, right id) → (rank, merged id)
    merges: HashMap<(u32, u32), (u32, u32)>,
    byte_token: [u32; 256],
    byte_char: [char; 256],
    /// unicode char of the byte-level alphabet → byte
    char_byte: HashMap<char, u8>,
    /// Special tokens (control / user-defined), longest first: (text, id, is_control).
    specials: Vec<(String, u32, bool)>,
    /// Max digits per number piece: 1 for qwen2, 3 for llama3.
    max_digits: usize,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    eog: Vec<u32>,
}

impl Tokenizer {
    pub fn new(td: &TokenizerData, file: &str) -> Result<Tokenizer> {
        if td.model != "gpt2" {
            return Err(Error::meta(
                file,
                "tokenizer.ggml.model",
                format!(
                    "tokenizer model `{}` is not supported (graphrun tokenizes byte-level BPE `gpt2`)",
                    td.model
                ),
            ));
        }
        let max_digits = match td.pre.as_deref() {
            Some("qwen2") | None => 1,
            Some("llama3" | "llama-bpe") => 3,
            Some(p) => {
                return Err(Error::meta(
                    file,
                    "tokenizer.ggml.pre",
                    format!("pre-tokenizer `{p}` is not supported (qwen2, llama3)"),
                ));
            }
        };
        let vocab: HashMap<String, u32> = td
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let b2u = byte_to_unicode();
        let mut byte_token = [0u32; 256];
        for (b, c) in b2u.iter().enumerate() {
            byte_token[b] = *vocab.get(&c.to_string()).ok_or_else(|| {
                Error::meta(
                    file,
                    "tokenizer.ggml.tokens",
                    format!("byte-level symbol for byte 0x{b:02x} ({c:?}) is missing"),
                )
            })?;
        }
        let mut merges = HashMap::with_capacity(td.merges.len());
        for (rank, m) in td.merges.iter().enumerate() {
            let bad = || {
                Error::meta(
                    file,
                    "tokenizer.ggml.merges",
                    format!("merge {rank} `{m}` is malformed or names unknown tokens"),
                )
            };
            let (a, b) = m.split_once(' ').ok_or_else(bad)?;
            let ia = *vocab.get(a).ok_or_else(bad)?;
            let ib = *vocab.get(b).ok_or_else(bad)?;
            let Some(&im) = vocab.get(&format!("{a}{b}")) else {
                continue;
            };
            merges.entry((ia, ib)).or_insert((rank as u32, im));
        }
        let mut specials: Vec<(String, u32, bool)> = td
            .tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match td.token_type(i as u32) {
                TokenType::Control => Some((t.clone(), i as u32, true)),
                TokenType::UserDefined => Some((t.clone(), i as u32, false)),
                _ => None,
            })
            .filter(|(t, _, _)| !t.is_empty())
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(Tokenizer {
            vocab,
            tokens: td.tokens.clone(),
            types: (0..td.tokens.len() as u32)
                .map(|i| td.token_type(i))
                .collect(),
            merges,
            byte_token,
            byte_char: b2u,
            char_byte: b2u.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect(),
            specials,
            max_digits,
            bos: td.bos,
            eos: td.eos,
            add_bos: td.add_bos,
            eog: td.end_of_generation_ids(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.get(text).copied()
    }

    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// Tokenizes `text`. With `parse_special`, control tokens written in the text (such as
    /// `<|im_start|>`) become their token; user-defined tokens always do (llama.cpp's rule).
    /// No BOS is added here; callers add it when `add_bos` says so.
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // Find the earliest special token occurrence (longest token on ties).
            let hit = self
                .specials
                .iter()
                .filter(|(_, _, control)| parse_special || !control)
                .filter_map(|(t, id, _)| rest.find(t.as_str()).map(|pos| (pos, t.len(), *id)))
                .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let (plain, special) = match hit {
                Some((pos, len, id)) => (&rest[..pos], Some((id, pos + len))),
                None => (rest, None),
            };
            for piece in pretok::split(plain, self.max_digits) {
                self.bpe(piece, &mut out);
            }
            match special {
                Some((id, end)) => {
                    out.push(id);
                    rest = &rest[end..];
                }
                None => break,
            }
        }
        out
    }

    /// Byte-pair encodes one pre-token: start from its byte symbols and repeatedly merge the
    /// adjacent pair of lowest merge rank (leftmost on ties).
    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let mapped: String = piece.bytes().map(|b| self.byte_char[b as usize]).collect();
        if let Some(&id) = self.vocab.get(&mapped) {
            out.push(id);
            return;
        }
        let mut sym: Vec<u32> = piece.bytes().map(|b| self.byte_token[b as usize]).collect();
        let n = sym.len();
        // Doubly linked list over symbols; heap of candidate merges (rank, left position).
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<std::cmp::Reverse<(u32, usize, u32, u32)>>,
                    sym: &[u32],
                    i: usize,
                    j: usize| {
            if let Some(&(rank, _)) = self.merges.get(&(sym[i], sym[j])) {
                heap.push(std::cmp::Reverse((rank, i, sym[i], sym[j])));
            }
        };
        for i in 0..n.saturating_sub(1) {
            push(&mut heap, &sym, i, i + 1);
        }
        while let Some(std::cmp::Reverse((_, i, a, b))) = heap.pop() {
            let j = next[i];
            // Skip stale entries: either side changed since this candidate was pushed.
            if !alive[i] || j >= n || sym[i] != a || sym[j] != b {
                continue;
            }
            sym[i] = self.merges[&(a, b)].1;
            alive[j] = false;
            next[i] = next[j];
            if next[i] < n {
                prev[next[i]] = i;
                push(&mut heap, &sym, i, next[i]);
            }
            if prev[i] != usize::MAX {
                push(&mut heap, &sym, prev[i], i);
            }
        }
        out.extend((0..n).filter(|&i| alive[i]).map(|i| sym[i]));
    }

    /// The raw bytes a token stands for. Control tokens render as their text only when
    /// `render_special` is set (they are not part of the generated text otherwise).
    pub fn token_bytes(&self, id: u32, render_special: bool) -> Vec<u8> {
        let Some(t) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        match self.types.get(id as usize) {
            Some(TokenType::Control) if !render_special => Vec::new(),
            Some(TokenType::Control | TokenType::UserDefined | TokenType::Unused) => {
                t.as_bytes().to_vec()
            }
            _ => t
                .chars()
                .map(|c| self.char_byte.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                // A normal token outside the byte alphabet: emit its UTF-8 text.
                .unwrap_or_else(|| t.as_bytes().to_vec()),
        }
    }

    /// Decodes ids to text; invalid UTF-8 is replaced (only) in the final string.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id, render_special))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Streams token bytes out as text, holding back an incomplete UTF-8 sequence until the
/// bytes that complete it arrive; `finish` flushes what is left with replacement chars.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_some() => {
                // A byte that can never start or continue a sequence: replace and move on.
                let upto = e.valid_up_to() + e.error_len().unwrap_or(1);
                let s = String::from_utf8_lossy(&self.pending[..upto]).into_owned();
                self.pending.drain(..upto);
                return s + &self.push(&[]);
            }
            Err(e) => e.valid_up_to(),
        };
        let s = String::from_utf8(self.pending[..valid].to_vec()).expect("validated");
        self.pending.drain(..valid);
        s
    }

    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
