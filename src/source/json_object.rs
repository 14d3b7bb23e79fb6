//! A JSON object read one level deep into a record: its members' values kept
//! as their JSON text, borrowed from the input while read (made record
//! values by `json_line::raw_value`). Shared by the Elasticsearch pages
//! (`_source`) and NDJSON lines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::Schema;

/// Reuses one schema for consecutive documents with the same fields.
#[derive(Default)]
pub(crate) struct SchemaCache {
    pub(crate) last: Option<Arc<Schema>>,
    /// The input file the schemas' records come from (one of several).
    pub(crate) origin: Option<Arc<str>>,
    /// A cache shared by threads that read one input: a schema not cached
    /// here is taken from it, so all of them give records of one shape one
    /// schema.
    pub(crate) shared: Option<Arc<Mutex<SchemaCache>>>,
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
            .or_insert_with(|| match &self.shared {
                Some(shared) => shared
                    .lock()
                    .expect("schema cache lock")
                    .schema(key.iter().map(String::as_str)),
                None => Arc::new(Schema::with_origin(key, self.origin.clone())),
            })
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
        // Compared pairwise, held on the stack.
        let mut list = [""; 32];
        for (slot, key) in list.iter_mut().zip(keys) {
            *slot = key;
        }
        return (1..n).all(|i| !list[..i].contains(&list[i]));
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    keys.into_iter().all(|k| seen.insert(k))
}
