//! APR metadata: the JSON object of an APR file, kept as raw text per key and decoded only
//! when read (bounded: `apr::MAX_METADATA_BYTES` of JSON, `MAX_METADATA_KEYS` keys).

use super::gguf::MAX_ARRAY_LEN;
use crate::error::{Error, Result};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Most top-level metadata keys (the writers emit a few dozen).
pub const MAX_METADATA_KEYS: usize = 4096;

/// APR metadata: the entries of the JSON object in file order, each value kept as its raw
/// JSON text, so memory is the text's size whatever the JSON holds. Values are decoded
/// when read, into the type the reader expects (`decode`; `strings` for the tokenizer
/// arrays, the only ones read in full), so a huge array under a scalar key is an error,
/// not an allocation.
#[derive(Clone, Debug)]
pub struct AprMetadata {
    entries: Vec<(String, Box<RawValue>)>,
}

impl AprMetadata {
    /// Parses the metadata JSON; errors carry the 1-based column (W1 writes one line).
    pub(super) fn parse(json: &[u8]) -> std::result::Result<AprMetadata, (usize, String)> {
        let mut d = serde_json::Deserializer::from_slice(json);
        let entries = match d.deserialize_map(Entries).and_then(|e| d.end().map(|()| e)) {
            Ok(e) => e,
            Err(e) => return Err((e.column(), format!("invalid metadata JSON: {e}"))),
        };
        let mut seen = std::collections::HashSet::new();
        if let Some((k, _)) = entries.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            return Err((1, format!("metadata JSON has the key {k:?} twice")));
        }
        Ok(AprMetadata { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The value of `key` as a `T` (`what` says what was expected, for the error); None
    /// when the key is absent.
    pub fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        file: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|_| Error::meta(file, key, format!("must be {what}, found {}", excerpt(raw))))
    }

    /// The value of `key` as an array of at most `MAX_ARRAY_LEN` strings.
    pub fn strings(&self, key: &str, file: &str) -> Result<Option<Vec<String>>> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let mut d = serde_json::Deserializer::from_str(raw.get());
        d.deserialize_seq(BoundedStrings).map(Some).map_err(|e| {
            Error::meta(
                file,
                key,
                format!("must be an array of at most {MAX_ARRAY_LEN} strings ({e})"),
            )
        })
    }
}

/// The start of a raw JSON value, for error messages.
pub fn excerpt(raw: &RawValue) -> String {
    let s = raw.get();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

/// Top-level object → entries with raw values (at most `MAX_METADATA_KEYS`).
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(String, Box<RawValue>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.len() == MAX_METADATA_KEYS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_METADATA_KEYS} keys"
                )));
            }
            out.push((k, map.next_value()?));
        }
        Ok(out)
    }
}

/// A JSON array of strings, refused once it passes `MAX_ARRAY_LEN` elements.
struct BoundedStrings;

impl<'de> Visitor<'de> for BoundedStrings {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            if out.len() as u64 == MAX_ARRAY_LEN {
                return Err(de::Error::custom(format!(
                    "more than {MAX_ARRAY_LEN} elements"
                )));
            }
            out.push(s);
        }
        Ok(out)
    }
}
