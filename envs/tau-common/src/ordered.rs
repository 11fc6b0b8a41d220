//! [`OrderedMap`]: a string-keyed map that keeps insertion order, as a Python dict does.
//!
//! The original tau-bench tools answer with `json.dumps(record)`, which lists a dict's keys in the
//! order they were inserted: the JSON file's order, then keys a tool added. Maps keyed by id
//! (`payment_methods`, `variants`) and `options` follow no sorted order in the v1 files, so a
//! `BTreeMap` printed them differently. The maps involved are small (options: a handful of keys, a
//! user's payment methods: at most ~6, a product's variants: a few dozen), so a `Vec` with linear
//! lookups is as fast as a tree here and keeps the order for free.
//!
//! Equality ignores order, as Python's dict equality does, so the verifier's DB comparison is
//! unchanged. Serialization follows insertion order, except inside [`canonical`], where keys come out
//! sorted: the DB hashes must give equal digests for equal DBs whatever the insertion order.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Index;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map from `String` keys to `V` in insertion order (see the module docs).
#[derive(Debug, Clone)]
pub struct OrderedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap {
            entries: Vec::new(),
        }
    }
}

impl<V> OrderedMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Python's `d[key] = value`: an existing key keeps its position, a new one goes last.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Python's `del d[key]` / `d.pop(key)`: the other keys keep their order.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<V: PartialEq> PartialEq for OrderedMap<V> {
    /// Order-insensitive, as Python's dict equality (and tau-bench's sorted-key DB hash).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<V: Eq> Eq for OrderedMap<V> {}

impl<V> FromIterator<(String, V)> for OrderedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut map = OrderedMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<'a, V> IntoIterator for &'a OrderedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<V, Q: AsRef<str> + ?Sized> Index<&Q> for OrderedMap<V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        let key = key.as_ref();
        self.get(key)
            .unwrap_or_else(|| panic!("key `{key}` not in the map"))
    }
}

thread_local! {
    static CANONICAL: Cell<bool> = const { Cell::new(false) };
}

/// Whether serialization is inside [`canonical`] (records with a variable key order write one fixed
/// order there).
pub fn is_canonical() -> bool {
    CANONICAL.with(Cell::get)
}

/// Runs `f` with [`OrderedMap`]s serializing in sorted key order (for canonical hashes and JSON).
pub fn canonical<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            CANONICAL.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CANONICAL.with(|c| c.replace(true)));
    f()
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        if is_canonical() {
            let mut sorted: Vec<&(String, V)> = self.entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in sorted {
                map.serialize_entry(k, v)?;
            }
        } else {
            for (k, v) in &self.entries {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = OrderedMap {
                    entries: Vec::with_capacity(access.size_hint().unwrap_or(0)),
                };
                // A repeated key keeps its first position and its last value, as `json.load`.
                while let Some((k, v)) = access.next_entry::<String, V>()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
