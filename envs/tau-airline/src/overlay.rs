//! An episode's DB as the initial DB (the base, built in `configure` and never written afterwards) plus
//! an [`Overlay`] of the records the episode changed: full copies of the touched users and reservations,
//! and the reservations it booked. Reads see the overlay first, then the base. Starting an episode
//! empties the overlay, so the base stays one shared copy (a fork or snapshot of the guest copies only
//! the pages the episode wrote, and the whole guest memory stays small).
//!
//! The write tools only change users and reservations (flights never change: v1 does not update seats),
//! never delete a record, and copy a record into the overlay only when they change it. Comparing two
//! overlays over the same base ([`Overlay::same_as`], [`Overlay::diff`]) and the digest
//! ([`Overlay::digest`]) therefore look only at records either overlay holds.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use serde_json::{Map, Value};
use tau_common::DbDigest;

use crate::db::{Db, Reservation, User};
use crate::store::Store;
use crate::tools;

/// The users and reservations an episode changed or added, as full copies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    users: BTreeMap<String, User>,
    reservations: BTreeMap<String, Reservation>,
}

/// The base with an overlay on top, for the tools.
pub struct View<'a> {
    base: &'a Db,
    overlay: &'a mut Overlay,
}

impl Store for View<'_> {
    fn flights_db(&self) -> &Db {
        self.base
    }
    fn user(&self, id: &str) -> Option<&User> {
        self.overlay.user(self.base, id)
    }
    fn reservation(&self, id: &str) -> Option<&Reservation> {
        self.overlay.reservation(self.base, id)
    }
    fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        copy_on_write(&mut self.overlay.users, &self.base.users, id)
    }
    fn reservation_mut(&mut self, id: &str) -> Option<&mut Reservation> {
        copy_on_write(&mut self.overlay.reservations, &self.base.reservations, id)
    }
    fn insert_reservation(&mut self, reservation: Reservation) {
        self.overlay
            .reservations
            .insert(reservation.reservation_id.clone(), reservation);
    }
}

/// The overlay's record `id`, copied from the base on first write.
fn copy_on_write<'a, T: Clone>(
    overlay: &'a mut BTreeMap<String, T>,
    base: &BTreeMap<String, T>,
    id: &str,
) -> Option<&'a mut T> {
    if !overlay.contains_key(id) {
        overlay.insert(id.to_string(), base.get(id)?.clone());
    }
    overlay.get_mut(id)
}

impl Overlay {
    /// Forgets every change: the effective DB is the base again.
    pub fn clear(&mut self) {
        self.users.clear();
        self.reservations.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.reservations.is_empty()
    }

    pub fn view<'a>(&'a mut self, base: &'a Db) -> View<'a> {
        View {
            base,
            overlay: self,
        }
    }

    /// The effective user `id` over `base`.
    pub fn user<'a>(&'a self, base: &'a Db, id: &str) -> Option<&'a User> {
        self.users.get(id).or_else(|| base.users.get(id))
    }

    /// The effective reservation `id` over `base`.
    pub fn reservation<'a>(&'a self, base: &'a Db, id: &str) -> Option<&'a Reservation> {
        self.reservations
            .get(id)
            .or_else(|| base.reservations.get(id))
    }

    /// Runs a domain tool on `base` + this overlay (`None` if `name` is not one).
    pub fn call(
        &mut self,
        base: &Db,
        name: &str,
        args: &Map<String, Value>,
    ) -> Option<Result<String, String>> {
        tools::call(&mut self.view(base), name, args)
    }

    /// The ids either overlay holds, users and reservations, ascending.
    fn touched<'a>(&'a self, other: &'a Overlay) -> (BTreeSet<&'a String>, BTreeSet<&'a String>) {
        (
            self.users.keys().chain(other.users.keys()).collect(),
            self.reservations
                .keys()
                .chain(other.reservations.keys())
                .collect(),
        )
    }

    /// Whether `base` + this overlay equals `base` + `other`: only records either holds can differ.
    pub fn same_as(&self, other: &Overlay, base: &Db) -> bool {
        let (users, reservations) = self.touched(other);
        users
            .iter()
            .all(|id| self.user(base, id) == other.user(base, id))
            && reservations
                .iter()
                .all(|id| self.reservation(base, id) == other.reservation(base, id))
    }

    /// The [`DbDigest`] of `base` + this overlay (`base_hash`: the base's canonical hash): folds in the
    /// overlay's reservations, then users, that differ from their base version.
    pub fn digest(&self, base: &Db, base_hash: u64) -> u64 {
        let mut digest = DbDigest::new(base_hash);
        digest.changes(
            "reservations",
            self.reservations.keys(),
            |id| self.reservation(base, id),
            |id| base.reservations.get(id),
        );
        digest.changes(
            "users",
            self.users.keys(),
            |id| self.user(base, id),
            |id| base.users.get(id),
        );
        digest.finish()
    }

    /// How `base` + this (the agent's) overlay differs from `base` + `gold`, one line per record.
    pub fn diff(&self, gold: &Overlay, base: &Db) -> Vec<String> {
        let (users, reservations) = self.touched(gold);
        let mut out = Vec::new();
        let mut line =
            |table: &str, id: &str, mine: bool, theirs: bool, equal: bool| match (mine, theirs) {
                (true, false) => out.push(format!("{table} `{id}` only in the agent's DB")),
                (false, true) => out.push(format!("{table} `{id}` missing from the agent's DB")),
                (true, true) if !equal => out.push(format!("{table} `{id}` differs")),
                _ => {}
            };
        for id in users {
            let (a, b) = (self.user(base, id), gold.user(base, id));
            line("user", id, a.is_some(), b.is_some(), a == b);
        }
        for id in reservations {
            let (a, b) = (self.reservation(base, id), gold.reservation(base, id));
            line("reservation", id, a.is_some(), b.is_some(), a == b);
        }
        out
    }

    /// `base` + this overlay as a whole DB (a full copy: for tests and tools, not for episodes).
    pub fn materialize(&self, base: &Db) -> MaterializedDb {
        let mut db = base.clone();
        db.users
            .extend(self.users.iter().map(|(k, v)| (k.clone(), v.clone())));
        db.reservations.extend(
            self.reservations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        MaterializedDb(db)
    }
}

/// An effective DB copied out of base + overlay. It reads as a [`Db`] (`Deref`; `.clone()` gives the
/// `Db`) and compares with one.
#[derive(Debug, PartialEq)]
pub struct MaterializedDb(Db);

impl MaterializedDb {
    pub fn into_inner(self) -> Db {
        self.0
    }
}

impl Deref for MaterializedDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.0
    }
}

impl PartialEq<Db> for MaterializedDb {
    fn eq(&self, other: &Db) -> bool {
        self.0 == *other
    }
}

impl PartialEq<&Db> for MaterializedDb {
    fn eq(&self, other: &&Db) -> bool {
        self.0 == **other
    }
}
