//! `graphrun tokenize` and `graphrun detokenize`.

use super::common::{open, tokenizer};
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// GGUF or APR model whose vocabulary to use.
    model: PathBuf,
    /// Text to tokenize.
    text: String,
    /// Treat special-token text (<|im_start|>...) as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// JSON output: {"ids": [...], "pieces": [...]}.
    #[arg(long)]
    json: bool,
}

pub fn tokenize(a: TokenizeArgs) -> Result<i32> {
    let m = open(Some(a.model))?;
    let tk = tokenizer(&m)?;
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
pub struct DetokenizeArgs {
    /// GGUF or APR model whose vocabulary to use.
    model: PathBuf,
    /// Token ids.
    #[arg(required = true)]
    ids: Vec<u32>,
    /// Do not render control tokens (<|im_end|>...) as text.
    #[arg(long)]
    skip_special: bool,
}

pub fn detokenize(a: DetokenizeArgs) -> Result<i32> {
    let m = open(Some(a.model))?;
    let tk = tokenizer(&m)?;
    if let Some(bad) = a.ids.iter().find(|&&i| i as usize >= tk.vocab_size()) {
        return Err(Error::invalid(format!(
            "token id {bad} is outside the vocabulary ({} tokens)",
            tk.vocab_size()
        )));
    }
    println!("{}", tk.decode(&a.ids, !a.skip_special));
    Ok(0)
}
