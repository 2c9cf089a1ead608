//! `graphrun tokenize` and `graphrun detokenize`.
//!
//! Their positional arguments are the text and the ids, so the model is a flag here
//! (`-m/--model`, default: the cached 0.5B), unlike `run`, `inspect` and `dump`, which take
//! it as an optional first positional argument.

use super::common::{open, tokenizer};
use graphrun::{Error, Result};
use std::path::PathBuf;

/// The model whose vocabulary to use.
#[derive(clap::Args)]
pub struct VocabArgs {
    /// GGUF or APR model (default: the cached 0.5B from scripts/fetch-model).
    #[arg(long, short = 'm', value_name = "MODEL")]
    model: Option<PathBuf>,
    /// Tokenizer for a model file that carries none: a Hugging Face tokenizer.json, or a
    /// GGUF/APR file of the same model.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
}

impl VocabArgs {
    fn load(&self) -> Result<graphrun::tokenizer::Tokenizer> {
        let m = open(self.model.clone())?;
        tokenizer(&m, self.tokenizer.as_deref())
    }
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  graphrun tokenize 'def fib(n):'
  graphrun tokenize -m model.gguf --json '<|im_start|>user'")]
pub struct TokenizeArgs {
    /// Text to tokenize.
    text: String,
    #[command(flatten)]
    vocab: VocabArgs,
    /// Treat special-token text (<|im_start|>...) as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// JSON output: {"ids": [...], "pieces": [...]}.
    #[arg(long)]
    json: bool,
}

pub fn tokenize(a: TokenizeArgs) -> Result<i32> {
    let tk = a.vocab.load()?;
    let ids = tk.encode(&a.text, !a.no_parse_special);
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tk.token_text(i).unwrap_or("").to_string())
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "ids": ids, "pieces": pieces, "count": ids.len() })
        );
    } else {
        for (id, p) in ids.iter().zip(&pieces) {
            println!("{id:>7} {p:?}");
        }
        eprintln!("{} tokens", ids.len());
    }
    Ok(0)
}

#[derive(clap::Args)]
#[command(after_help = "Example:
  graphrun detokenize 750 15801 1445 1006 1648")]
pub struct DetokenizeArgs {
    /// Token ids.
    #[arg(required = true)]
    ids: Vec<u32>,
    #[command(flatten)]
    vocab: VocabArgs,
    /// Do not render control tokens (<|im_end|>...) as text.
    #[arg(long)]
    skip_special: bool,
}

pub fn detokenize(a: DetokenizeArgs) -> Result<i32> {
    let tk = a.vocab.load()?;
    if let Some(bad) = a.ids.iter().find(|&&i| i as usize >= tk.vocab_size()) {
        return Err(Error::invalid(format!(
            "token id {bad} is outside the vocabulary ({} tokens)",
            tk.vocab_size()
        )));
    }
    println!("{}", tk.decode(&a.ids, !a.skip_special));
    Ok(0)
}
