//! Native timing of reset / verify / expert episode (run with `--release --target <host>`); see
//! `tau_common::timing`.

fn main() {
    tau_common::timing::run::<tau_retail::TauRetail>("retail", &["users", "orders", "products"]);
}
