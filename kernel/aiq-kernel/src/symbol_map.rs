//! [`SymbolMap`]: a per-symbol map stored densely by symbol index.
//!
//! The kernel interns every symbol it learns to a dense index and keeps its per-symbol maps
//! (`KernelState::symbols`, `KernelState::positions`) aligned to that index, so the per-bar paths
//! address a slot instead of comparing strings. Seen from outside, a `SymbolMap` behaves like the
//! `BTreeMap<String, T>` it replaced: lookups by name, iteration in name order, and serde as a
//! JSON object keyed by name in name order (saved states are byte-identical and load as before).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Source of layout tags: a map gets a fresh tag whenever its name table changes, so a kernel
/// can tell in O(1) whether a map is still aligned to its own symbol indices.
static NEXT_LAYOUT: AtomicU64 = AtomicU64::new(1);

fn fresh_layout() -> u64 {
    NEXT_LAYOUT.fetch_add(1, Ordering::Relaxed)
}

/// A map from symbol name to `T`, stored by symbol index. Names are never dropped from the
/// index (a removed entry leaves an empty slot), so indices stay valid for the map's lifetime.
#[derive(Clone)]
pub struct SymbolMap<T> {
    names: Vec<String>,
    slots: Vec<Option<T>>,
    /// Every index, sorted by name.
    order: Vec<u32>,
    len: usize,
    /// Changes whenever `names` changes (equal tags imply equal name tables).
    layout: u64,
}

impl<T> Default for SymbolMap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SymbolMap<T> {
    pub fn new() -> Self {
        Self { names: Vec::new(), slots: Vec::new(), order: Vec::new(), len: 0, layout: fresh_layout() }
    }

    /// Number of entries (occupied slots).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of `name`, if it has one (binary search over the names; not for the per-bar path).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.order
            .binary_search_by(|&i| self.names[i as usize].as_str().cmp(name))
            .ok()
            .map(|p| self.order[p] as usize)
    }

    /// Index of `name`, adding it (with an empty slot) if it has none.
    pub fn intern(&mut self, name: &str) -> usize {
        match self.order.binary_search_by(|&i| self.names[i as usize].as_str().cmp(name)) {
            Ok(p) => self.order[p] as usize,
            Err(p) => {
                let i = self.names.len();
                self.names.push(name.to_string());
                self.slots.push(None);
                self.order.insert(p, u32::try_from(i).expect("fewer than 2^32 symbols"));
                self.layout = fresh_layout();
                i
            }
        }
    }

    /// Number of indices (occupied or not).
    pub fn index_len(&self) -> usize {
        self.names.len()
    }

    /// The name table's tag: equal tags mean equal name tables (same names at the same indices).
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Name at index `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Names in index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn at(&self, i: usize) -> Option<&T> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    pub fn at_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// Set the entry at index `i` (which must exist), returning the previous one.
    pub fn put_at(&mut self, i: usize, value: T) -> Option<T> {
        let old = self.slots[i].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Remove the entry at index `i`; the index stays.
    pub fn take_at(&mut self, i: usize) -> Option<T> {
        let old = self.slots.get_mut(i).and_then(Option::take);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub fn get<K: AsRef<str> + ?Sized>(&self, name: &K) -> Option<&T> {
        self.index_of(name.as_ref()).and_then(|i| self.at(i))
    }

    pub fn get_mut<K: AsRef<str> + ?Sized>(&mut self, name: &K) -> Option<&mut T> {
        self.index_of(name.as_ref()).and_then(|i| self.at_mut(i))
    }

    pub fn contains_key<K: AsRef<str> + ?Sized>(&self, name: &K) -> bool {
        self.get(name).is_some()
    }

    pub fn insert(&mut self, name: String, value: T) -> Option<T> {
        let i = self.intern(&name);
        self.put_at(i, value)
    }

    pub fn remove<K: AsRef<str> + ?Sized>(&mut self, name: &K) -> Option<T> {
        self.index_of(name.as_ref()).and_then(|i| self.take_at(i))
    }

    /// Entries in name order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { map: self, pos: self.order.iter() }
    }

    /// Entries in name order with their indices.
    pub fn iter_indexed(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.order.iter().filter_map(|&i| self.slots[i as usize].as_ref().map(|v| (i as usize, v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Entries in name order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut T)> + '_ {
        let mut by_index: Vec<Option<(&String, &mut T)>> =
            self.names.iter().zip(self.slots.iter_mut()).map(|(n, s)| s.as_mut().map(|v| (n, v))).collect();
        self.order.iter().filter_map(move |&i| by_index[i as usize].take())
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }

    /// The same entries re-laid out on `names` (index `i` becomes `names[i]`). Every name of
    /// this map must be in `names`.
    pub fn aligned_to(mut self, names: &[String]) -> Self {
        let mut out = Self {
            names: names.to_vec(),
            slots: Vec::with_capacity(names.len()),
            order: Vec::new(),
            len: 0,
            layout: fresh_layout(),
        };
        for n in names {
            let v = self.index_of(n).and_then(|i| self.slots[i].take());
            out.len += usize::from(v.is_some());
            out.slots.push(v);
        }
        debug_assert_eq!(out.len, self.len, "every name of the map is in the new layout");
        let mut order: Vec<u32> =
            (0..names.len()).map(|i| u32::try_from(i).expect("fewer than 2^32 symbols")).collect();
        order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        out.order = order;
        out
    }
}

/// Iterator over a [`SymbolMap`] in name order.
pub struct Iter<'a, T> {
    map: &'a SymbolMap<T>,
    pos: std::slice::Iter<'a, u32>,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (&'a String, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        for &i in self.pos.by_ref() {
            if let Some(v) = self.map.slots[i as usize].as_ref() {
                return Some((&self.map.names[i as usize], v));
            }
        }
        None
    }
}

impl<'a, T> IntoIterator for &'a SymbolMap<T> {
    type Item = (&'a String, &'a T);
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> From<BTreeMap<String, T>> for SymbolMap<T> {
    fn from(m: BTreeMap<String, T>) -> Self {
        let len = m.len();
        let (names, slots): (Vec<String>, Vec<Option<T>>) = m.into_iter().map(|(k, v)| (k, Some(v))).unzip();
        let order = (0..len).map(|i| u32::try_from(i).expect("fewer than 2^32 symbols")).collect();
        Self { names, slots, order, len, layout: fresh_layout() }
    }
}

impl<T> FromIterator<(String, T)> for SymbolMap<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl<T, K: AsRef<str> + ?Sized> std::ops::Index<&K> for SymbolMap<T> {
    type Output = T;

    fn index(&self, name: &K) -> &T {
        self.get(name).expect("no entry for this symbol")
    }
}

impl<T: PartialEq> PartialEq for SymbolMap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: fmt::Debug> fmt::Debug for SymbolMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for SymbolMap<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SymbolMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, T>::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_btreemap_in_name_order() {
        let mut m = SymbolMap::new();
        let mut b = BTreeMap::new();
        for (k, v) in [("SOL", 3), ("BTC", 1), ("kPEPE", 5), ("ETH", 2), ("BTC", 9), ("AAVE", 0)] {
            assert_eq!(m.insert(k.to_string(), v), b.insert(k.to_string(), v));
        }
        assert_eq!(m.remove("ETH"), b.remove("ETH"));
        assert_eq!(m.remove("ETH"), None);
        assert_eq!(m.len(), b.len());
        assert_eq!(m.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&b).unwrap());
        assert_eq!(m["kPEPE"], 5);
        assert!(m.contains_key("SOL") && !m.contains_key("ETH"));
        for (_, v) in m.iter_mut() {
            *v += 1;
        }
        assert_eq!(m.values().copied().collect::<Vec<_>>(), vec![1, 10, 4, 6]);
        // Indices survive removal and re-insertion.
        let i = m.index_of("ETH").unwrap();
        m.insert("ETH".into(), 7);
        assert_eq!(m.at(i), Some(&7));
    }

    #[test]
    fn aligned_to_keeps_entries_and_name_order() {
        let m: SymbolMap<i32> = [("ETH".to_string(), 2), ("BTC".to_string(), 1)].into_iter().collect();
        let names: Vec<String> = ["SOL", "ETH", "ADA", "BTC"].iter().map(|s| s.to_string()).collect();
        let a = m.clone().aligned_to(&names);
        assert_eq!(a, m);
        assert_eq!(a.at(1), Some(&2));
        assert_eq!(a.at(3), Some(&1));
        assert_eq!(a.at(0), None);
        assert_ne!(a.layout(), m.layout());
        let back: SymbolMap<i32> = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
