//! Record shapes both tau-bench domains share, field for field as the original JSON.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// A person's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Name {
    pub first_name: String,
    pub last_name: String,
}

/// A postal address. Serializes in the v1 files' field order (`…, city, country, state, zip`), or,
/// once a tool wrote it ([`AddressOrder::Written`]), in the order the original's write tools build the
/// dict (`…, city, state, country, zip`: retail's `modify_pending_order_address` and
/// `modify_user_address`), so `json.dumps` of the record reads the same.
#[derive(Debug, Clone, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub address1: String,
    pub address2: String,
    pub city: String,
    pub country: String,
    pub state: String,
    pub zip: String,
    /// Key order only; not part of the value (equality ignores it, as Python's dict equality).
    #[serde(skip)]
    pub order: AddressOrder,
}

/// The key order an [`Address`] prints in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AddressOrder {
    /// As loaded from the v1 files (and as the generators build addresses).
    #[default]
    File,
    /// As the original write tools build it.
    Written,
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.address1,
            &self.address2,
            &self.city,
            &self.country,
            &self.state,
            &self.zip,
        ) == (
            &other.address1,
            &other.address2,
            &other.city,
            &other.country,
            &other.state,
            &other.zip,
        )
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_struct("Address", 6)?;
        map.serialize_field("address1", &self.address1)?;
        map.serialize_field("address2", &self.address2)?;
        map.serialize_field("city", &self.city)?;
        // Hashes (canonical mode) use one order, so equal addresses hash alike.
        if self.order == AddressOrder::Written && !crate::ordered::is_canonical() {
            map.serialize_field("state", &self.state)?;
            map.serialize_field("country", &self.country)?;
        } else {
            map.serialize_field("country", &self.country)?;
            map.serialize_field("state", &self.state)?;
        }
        map.serialize_field("zip", &self.zip)?;
        map.end()
    }
}
