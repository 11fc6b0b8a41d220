//! A working copy of the initial DB that remembers which records the write tools may have touched,
//! so that resetting it, and comparing two copies made from the same initial DB, costs only those
//! records instead of the whole DB (the v1 DB is thousands of records; an episode touches a few).
//!
//! The write tools only change users and reservations (flights never change: v1 does not update
//! seats), and always the records named by their `user_id` / `reservation_id` arguments, the
//! reservation's owner, or a new reservation `HATHAT`/`HATHAU`/`HATHAV`; [`WorkingDb::call`] marks
//! exactly those before running the tool. The same marks give the copy's digest ([`WorkingDb::digest`])
//! from the initial DB's hash and the touched records that differ from it.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use tau_common::DbDigest;

use crate::db::Db;
use crate::tools;

#[derive(Debug, Clone, Default)]
pub struct WorkingDb {
    db: Db,
    users: BTreeSet<String>,
    reservations: BTreeSet<String>,
    /// Whether `db` was copied from the initial DB in use (false before the first reset and after
    /// the initial DB changed).
    valid: bool,
}

impl WorkingDb {
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Forgets the copy: the next reset copies the whole initial DB.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Makes the copy equal to `initial` again.
    pub fn reset(&mut self, initial: &Db) {
        if !self.valid {
            self.db = initial.clone();
            self.valid = true;
        } else {
            for id in &self.users {
                match initial.users.get(id) {
                    Some(user) => self.db.users.insert(id.clone(), user.clone()),
                    None => self.db.users.remove(id),
                };
            }
            for id in &self.reservations {
                match initial.reservations.get(id) {
                    Some(r) => self.db.reservations.insert(id.clone(), r.clone()),
                    None => self.db.reservations.remove(id),
                };
            }
        }
        self.users.clear();
        self.reservations.clear();
    }

    /// Runs a domain tool (`None` if `name` is not one), marking what a write may touch.
    pub fn call(
        &mut self,
        name: &str,
        args: &Map<String, Value>,
    ) -> Option<Result<String, String>> {
        if tools::WRITE_TOOLS.contains(&name) {
            if let Some(Value::String(id)) = args.get("user_id") {
                self.users.insert(id.clone());
            }
            if let Some(Value::String(id)) = args.get("reservation_id") {
                self.reservations.insert(id.clone());
                if let Some(r) = self.db.reservations.get(id) {
                    self.users.insert(r.user_id.clone());
                }
            }
            if name == "book_reservation" {
                self.reservations
                    .extend(tools::RESERVATION_IDS.iter().map(|id| id.to_string()));
            }
        }
        tools::call(&mut self.db, name, args)
    }

    fn touched<'a>(&'a self, other: &'a WorkingDb) -> (BTreeSet<&'a String>, BTreeSet<&'a String>) {
        (
            self.users.iter().chain(&other.users).collect(),
            self.reservations
                .iter()
                .chain(&other.reservations)
                .collect(),
        )
    }

    /// Whether the two copies (made from the same initial DB) are equal: only touched records can
    /// differ.
    pub fn same_as(&self, other: &WorkingDb) -> bool {
        let (users, reservations) = self.touched(other);
        let same = users
            .iter()
            .all(|id| self.db.users.get(*id) == other.db.users.get(*id))
            && reservations
                .iter()
                .all(|id| self.db.reservations.get(*id) == other.db.reservations.get(*id));
        debug_assert_eq!(
            same,
            self.db == other.db,
            "a write touched an unmarked record"
        );
        same
    }

    /// The [`DbDigest`] of this copy, made from `initial` whose canonical hash is `initial_hash`: folds
    /// in the touched reservations, then users, that differ from their initial version.
    pub fn digest(&self, initial: &Db, initial_hash: u64) -> u64 {
        let mut digest = DbDigest::new(initial_hash);
        digest.changes(
            "reservations",
            &self.reservations,
            |id| self.db.reservations.get(id),
            |id| initial.reservations.get(id),
        );
        digest.changes(
            "users",
            &self.users,
            |id| self.db.users.get(id),
            |id| initial.users.get(id),
        );
        digest.finish()
    }

    /// How this (the agent's) copy differs from `gold`, one line per record.
    pub fn diff(&self, gold: &WorkingDb) -> Vec<String> {
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
            let (a, b) = (self.db.users.get(id), gold.db.users.get(id));
            line("user", id, a.is_some(), b.is_some(), a == b);
        }
        for id in reservations {
            let (a, b) = (self.db.reservations.get(id), gold.db.reservations.get(id));
            line("reservation", id, a.is_some(), b.is_some(), a == b);
        }
        out
    }
}
