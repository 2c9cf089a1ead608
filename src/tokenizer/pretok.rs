//! Pre-tokenization: splitting text into pieces before BPE, hand-written to match the
//! regexes of llama.cpp's `qwen2` (and `llama3`) pre-tokenizers exactly:
//!
//! ```text
//! (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,K} |
//!  ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//! ```
//!
//! with K = 1 for qwen2 and 3 for llama3. At each position the first alternative that
//! matches wins (regex alternation), each with its greedy-with-backtracking meaning worked
//! out by hand below.

use super::unicode_tables::{LETTER, NUMBER, WHITE_SPACE};

fn in_ranges(c: char, r: &[(u32, u32)]) -> bool {
    let c = c as u32;
    r.binary_search_by(|&(a, b)| {
        if b < c {
            std::cmp::Ordering::Less
        } else if a > c {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    })
    .is_ok()
}

pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_ranges(c, LETTER)
}

pub fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_ranges(c, NUMBER)
}

pub fn is_space(c: char) -> bool {
    WHITE_SPACE.contains(&(c as u32))
}

/// Neither whitespace, letter nor number.
fn is_other(c: char) -> bool {
    !is_space(c) && !is_letter(c) && !is_number(c)
}

fn is_crlf(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Splits `text` into pre-tokens (as byte ranges of `text`).
pub fn split(text: &str, max_digits: usize) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let byte_at = |i: usize| if i < n { chars[i].0 } else { text.len() };
    let run = |mut i: usize, f: &dyn Fn(char) -> bool| {
        while i < n && f(chars[i].1) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        let end = contraction(&chars, i)
            .or_else(|| {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if is_letter(c) {
                    Some(run(i, &is_letter))
                } else if !is_crlf(c) && !is_number(c) && at(i + 1).is_some_and(is_letter) {
                    Some(run(i + 1, &is_letter))
                } else {
                    None
                }
            })
            .or_else(|| {
                // \p{N}{1,K}
                is_number(c).then(|| {
                    let mut j = i;
                    while j < n && j - i < max_digits && is_number(chars[j].1) {
                        j += 1;
                    }
                    j
                })
            })
            .or_else(|| {
                // ' '?[^\s\p{L}\p{N}]+[\r\n]*
                let s = if c == ' ' && at(i + 1).is_some_and(is_other) {
                    i + 1
                } else {
                    i
                };
                (s < n && is_other(chars[s].1)).then(|| run(run(s, &is_other), &is_crlf))
            })
            .or_else(|| {
                // \s*[\r\n]+ : ends after the last \r or \n of the whitespace run.
                let j = run(i, &is_space);
                (i..j).rev().find(|&k| is_crlf(chars[k].1)).map(|k| k + 1)
            })
            .unwrap_or_else(|| {
                // \s+(?!\S) then \s+ : a whitespace run followed by a non-space gives its
                // last whitespace to the next piece, unless the run has only one character.
                let j = run(i, &is_space);
                if j < n && j - i >= 2 { j - 1 } else { j }
            });
        let end = end.max(i + 1); // every alternative above consumes at least one char
        out.push(&text[byte_at(i)..byte_at(end)]);
        i = end;
    }
    out
}

/// (?i:'s|'t|'re|'ve|'m|'ll|'d)
fn contraction(chars: &[(usize, char)], i: usize) -> Option<usize> {
    if chars[i].1 != '\'' {
        return None;
    }
    let lower = |k: usize| chars.get(i + k).map(|&(_, c)| c.to_ascii_lowercase());
    match (lower(1), lower(2)) {
        (Some('s' | 't' | 'm' | 'd'), _) => Some(i + 2),
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(i + 3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn qwen2_splits_like_the_regex() {
        assert_eq!(split("Hello, world!", 1), ["Hello", ",", " world", "!"]);
        assert_eq!(split("  leading", 1), [" ", " leading"]);
        assert_eq!(split("a  \n\n b", 1), ["a", "  \n\n", " b"]);
        assert_eq!(split("x   ", 1), ["x", "   "]);
        assert_eq!(split("1234", 1), ["1", "2", "3", "4"]);
        assert_eq!(split("1234", 3), ["123", "4"]);
        assert_eq!(split("I'll go", 1), ["I", "'ll", " go"]);
        assert_eq!(split("a += b;\n", 1), ["a", " +=", " b", ";\n"]);
        assert_eq!(split("if x:\n\tprint", 1), ["if", " x", ":\n", "\tprint"]);
    }
}
