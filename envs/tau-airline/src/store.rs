//! [`Store`]: what the domain tools read and write, the effective users and reservations and the
//! flights. Below both [`tools`](crate::tools) (which only need a store) and
//! [`overlay`](crate::overlay) (whose view over the base DB is one), so neither needs the other's
//! module for it. A plain [`Db`] is a store too.

use crate::db::{Db, Reservation, User};

/// What the domain tools read and write: the effective users and reservations, and the flights.
pub trait Store {
    /// The DB flights are read from (flights never change; its users and reservations may be stale).
    fn flights_db(&self) -> &Db;
    fn user(&self, id: &str) -> Option<&User>;
    fn reservation(&self, id: &str) -> Option<&Reservation>;
    /// The user for writing; `None` when there is no such user.
    fn user_mut(&mut self, id: &str) -> Option<&mut User>;
    /// The reservation for writing; `None` when there is no such reservation.
    fn reservation_mut(&mut self, id: &str) -> Option<&mut Reservation>;
    /// Stores a reservation under its id.
    fn insert_reservation(&mut self, reservation: Reservation);
}

/// A plain DB is its own store (tests and tools built on the crate).
impl Store for Db {
    fn flights_db(&self) -> &Db {
        self
    }
    fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }
    fn reservation(&self, id: &str) -> Option<&Reservation> {
        self.reservations.get(id)
    }
    fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.get_mut(id)
    }
    fn reservation_mut(&mut self, id: &str) -> Option<&mut Reservation> {
        self.reservations.get_mut(id)
    }
    fn insert_reservation(&mut self, reservation: Reservation) {
        self.reservations
            .insert(reservation.reservation_id.clone(), reservation);
    }
}
