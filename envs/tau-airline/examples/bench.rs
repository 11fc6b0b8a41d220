//! Native timing of reset / verify / expert episode (run with `--release --target <host>`); see
//! `tau_common::timing`.

fn main() {
    tau_common::timing::run::<tau_airline::TauAirline>(
        "airline",
        &["users", "flights", "reservations"],
    );
}
