//! A JSON object read one level deep into a record: its members' values kept
//! as their JSON text ([`Value::Raw`]), borrowed from the input while read.
//! Shared by the Elasticsearch pages (`_source`) and NDJSON lines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::{Schema, Value};

/// Reuses one schema for consecutive documents with the same fields.
#[derive(Default)]
pub(crate) struct SchemaCache {
    pub(crate) last: Option<Arc<Schema>>,
    /// The input file the schemas' records come from (one of several).
    pub(crate) origin: Option<Arc<str>>,
    by_keys: HashMap<Vec<String>, Arc<Schema>>,
}

impl SchemaCache {
    /// The schema of the fields named `names`, in order: the last one when
    /// it matches, else one from the cache (made on first sight).
    pub(crate) fn schema<'n>(
        &mut self,
        names: impl Iterator<Item = &'n str> + Clone,
    ) -> Arc<Schema> {
        if let Some(s) = &self.last {
            if s.names().iter().map(String::as_str).eq(names.clone()) {
                return s.clone();
            }
        }
        let key: Vec<String> = names.map(str::to_string).collect();
        if self.by_keys.len() > 4096 {
            self.by_keys.clear();
        }
        let s = self
            .by_keys
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Schema::with_origin(key, self.origin.clone())))
            .clone();
        self.last = Some(s.clone());
        s
    }
}

/// A string that borrows from the page unless it holds escapes.
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The members of a JSON object in order, their values left as JSON text.
pub(crate) type Members<'a> = Vec<(Text<'a>, &'a RawValue)>;

/// Reads an object's members into a (reused) vector.
pub(crate) struct MembersInto<'v, 'a>(pub(crate) &'v mut Members<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for MembersInto<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for MembersInto<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Text<'a>>()? {
            let value: &'a RawValue = map.next_value()?;
            self.0.push((key, value));
        }
        Ok(())
    }
}

/// True when no two keys are the same.
pub(crate) fn all_different<'k>(keys: impl Iterator<Item = &'k str> + Clone) -> bool {
    let n = keys.clone().count();
    if n <= 32 {
        let list: Vec<&str> = keys.collect();
        return (1..n).all(|i| !list[..i].contains(&list[i]));
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    keys.into_iter().all(|k| seen.insert(k))
}

/// A `_source` value as a record value: null and booleans as themselves,
/// anything else as its JSON text, objects and arrays on one line.
pub(crate) fn raw_value(text: &str) -> Value {
    match text.as_bytes().first() {
        Some(b'n') => Value::Null,
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'{' | b'[') => Value::Raw(compact(text)),
        _ => Value::Raw(text.to_string()),
    }
}

/// Valid JSON text without the whitespace between its tokens (a
/// `_source` as it was indexed may span lines).
pub(crate) fn compact(text: &str) -> String {
    if !text
        .bytes()
        .any(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
    {
        return text.to_string();
    }
    let mut out = Vec::with_capacity(text.len());
    compact_into(text, &mut out);
    String::from_utf8(out).expect("removing ASCII whitespace keeps UTF-8 valid")
}

/// [`compact`], appended to `out`. Strings are copied whole (their end
/// found with memchr), the bytes between them in runs.
pub(crate) fn compact_into(text: &str, out: &mut Vec<u8>) {
    let b = text.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t');
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        let c = b[i];
        if ws(c) {
            out.extend_from_slice(&b[run..i]);
            i += 1;
            run = i;
        } else if c == b'"' {
            // To the closing quote: past every escaped character.
            i += 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &b[i..]) {
                    Some(k) if b[i + k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                    None => {
                        i = b.len();
                        break;
                    }
                }
            }
            i = i.min(b.len());
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&b[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte definition: whitespace dropped outside strings.
    fn slow(text: &str) -> String {
        let mut out = String::new();
        let (mut in_str, mut escaped) = (false, false);
        for c in text.chars() {
            if in_str {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
                in_str = c == '"';
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn compact_drops_whitespace_outside_strings_only() {
        for text in [
            r#"{ "a b" : [ 1 , 2 ] , "c" : "x \" y\\" , "d":{"e" :"\\\"" } }"#,
            "{\n\t\"k\": \"v\\n w\",\r\n \"n\": null}",
            r#"{"no":"spaces","at":"all"}"#,
            r#"  "edge \\"   "#,
            r#"{"é": "ü ß", "x": "\u00e9 "}"#,
        ] {
            assert_eq!(compact(text), slow(text), "{text}");
        }
    }
}
