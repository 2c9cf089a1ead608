//! Stop strings over streamed text: text that could still turn into a stop string is held
//! back until it either completes one (the text is cut before it) or cannot any more.

/// Cuts a stream of text pieces at the first occurrence of any stop string.
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// `stops` must not contain empty strings.
    pub fn new(stops: Vec<String>) -> StopMatcher {
        StopMatcher {
            stops,
            held: String::new(),
        }
    }

    /// Adds `piece`; returns the text that is now safe to emit and whether a stop string
    /// was completed (then the text ends just before it, and the rest is dropped).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if let Some(i) = self.stops.iter().filter_map(|s| self.held.find(s)).min() {
            let out = self.held[..i].to_string();
            self.held.clear();
            return (out, true);
        }
        let keep = self
            .stops
            .iter()
            .map(|s| overlap(&self.held, s))
            .max()
            .unwrap_or(0);
        let out: String = self.held.drain(..self.held.len() - keep).collect();
        (out, false)
    }

    /// The held-back text, at the end of a generation that did not stop on a stop string.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest proper prefix of `stop` that `text` ends with.
fn overlap(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .find(|&k| stop.is_char_boundary(k) && text.ends_with(&stop[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool, String) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        for p in pieces {
            let (t, stopped) = m.push(p);
            out.push(t);
            if stopped {
                return (out, true, String::new());
            }
        }
        (out, false, m.flush())
    }

    #[test]
    fn stop_string_split_over_pieces_is_cut_and_never_emitted() {
        let (out, stopped, _) = run(&["\n\n"], &["def f():", "\n", "\n    x", "y"]);
        assert_eq!(out, ["def f():", "", ""]);
        assert!(stopped);
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let (out, stopped, rest) = run(&["END"], &["a E", "N", "x", "EN"]);
        assert_eq!(out, ["a ", "", "ENx", ""]);
        assert!(!stopped);
        assert_eq!(rest, "EN");
    }

    #[test]
    fn earliest_of_several_stops_wins_and_multibyte_prefixes_are_whole_characters() {
        let (out, stopped, _) = run(&["ß!", "b"], &["aß", "xb"]);
        assert_eq!(out, ["a", "ßx"]);
        assert!(stopped);
        let (out, stopped, rest) = run(&[], &["no stops"]);
        assert_eq!(
            (out[0].as_str(), stopped, rest.as_str()),
            ("no stops", false, "")
        );
    }
}
