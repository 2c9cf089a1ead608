//! Chat prompts from the model's own template: the Jinja source in the file's
//! `tokenizer.chat_template`, rendered by minijinja the way Hugging Face's
//! `apply_chat_template` renders it (`trim_blocks`, `lstrip_blocks`, loop controls,
//! `raise_exception`, Python string/dict methods through minijinja-contrib's `pycompat`),
//! with `messages`, `add_generation_prompt = true`, `bos_token` and `eos_token`.
//! `graphrun run --chat` and `graphrun serve` both build chat prompts here.

use crate::error::{Error, Result};
use crate::model::ModelFile;
use crate::model::tokdata::TokenizerData;
use crate::tokenizer::Tokenizer;
use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};
use std::collections::BTreeMap;

/// One chat turn. `role` is `system`, `user`, `assistant` or `tool`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// The template in `m`'s metadata; an error naming the file when it has none or the
    /// template does not compile.
    pub fn from_model(m: &ModelFile) -> Result<ChatTemplate> {
        ChatTemplate::from_tokenizer_data(&m.tokenizer, &m.path)
    }

    /// The template carried by tokenizer data read from `file` (a model file's metadata, or
    /// a tokenizer.json with its tokenizer_config.json).
    pub fn from_tokenizer_data(td: &TokenizerData, file: &str) -> Result<ChatTemplate> {
        let source = td.chat_template.as_deref().ok_or_else(|| {
            Error::invalid(format!(
                "{file}: no chat template (tokenizer.chat_template); use a plain prompt (no --chat, or /v1/completions)"
            ))
        })?;
        let text = |id: Option<u32>| {
            id.and_then(|i| td.tokens.get(i as usize))
                .cloned()
                .unwrap_or_default()
        };
        ChatTemplate::new(source, &text(td.bos), &text(td.eos))
            .map_err(|e| Error::invalid(format!("{file}: tokenizer.chat_template: {e}")))
    }

    /// Compiles `source` with the given BOS and EOS token texts.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| e.to_string())?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, _> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_global("bos_token", bos_token);
        env.add_global("eos_token", eos_token);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        Ok(ChatTemplate { env })
    }

    /// The prompt text for `messages`, ending with the assistant turn's header.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, String> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from(BTreeMap::from([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ]))
            })
            .collect();
        let ctx = minijinja::context! {
            messages => msgs,
            add_generation_prompt => true,
        };
        self.env
            .get_template(NAME)
            .and_then(|t| t.render(ctx))
            .map_err(|e| describe(&e))
    }
}

/// A minijinja error as one line: the template's own message for `raise_exception`, else
/// the kind, detail and line.
fn describe(e: &minijinja::Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(d)) => d.to_string(),
        _ => match e.line() {
            Some(l) => format!("{e} (template line {l})"),
            None => e.to_string(),
        },
    }
}

/// Token ids of a rendered chat prompt (special tokens in it parsed): BOS first when the
/// model wants one and the template has not written it already.
pub fn chat_prompt_ids(tk: &Tokenizer, text: &str) -> Vec<u32> {
    let ids = tk.encode(text, true);
    match tk.bos {
        Some(b) if tk.add_bos && ids.first() != Some(&b) => std::iter::once(b).chain(ids).collect(),
        _ => ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    #[test]
    fn renders_messages_and_the_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "<s>", "</s>").unwrap();
        let s = t
            .render(&[
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "Hi"),
            ])
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hugging_face_whitespace_python_methods_and_raise_exception() {
        // lstrip_blocks + trim_blocks remove the indentation and newlines around tags;
        // `.strip()` is a Python method (pycompat); `raise_exception` reports the message.
        let src = "{{ bos_token }}\n  {% for m in messages %}\n    {% if m.role == 'tool' %}{{ raise_exception('no tools here') }}{% endif %}\n[{{ m.content.strip() }}]\n  {% endfor %}\n";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        assert_eq!(
            t.render(&[
                ChatMessage::new("user", "  a  "),
                ChatMessage::new("user", "b")
            ])
            .unwrap(),
            "<s>\n[a]\n[b]\n"
        );
        assert_eq!(
            t.render(&[ChatMessage::new("tool", "x")]).unwrap_err(),
            "no tools here"
        );
    }

    #[test]
    fn template_syntax_errors_say_where() {
        let e = ChatTemplate::new("{% for m in messages %}", "", "")
            .err()
            .unwrap();
        assert!(e.contains("line 1"), "{e}");
    }
}
