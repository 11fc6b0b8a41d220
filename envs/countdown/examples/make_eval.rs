//! Regenerates `datasets/countdown/eval-v0.jsonl` (100 tasks, default config, fixed seeds):
//! `cargo run --example make_eval --target x86_64-unknown-linux-gnu` from `envs/`.

use std::path::Path;

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/countdown/eval-v0.jsonl");
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create datasets dir");
    std::fs::write(&path, countdown::eval_v0_jsonl()).expect("write eval set");
    println!("wrote {}", path.display());
}
