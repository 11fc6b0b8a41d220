//! Builds the guest environments under `envs/` for `wasm32-wasip1` and embeds the bundled ones, so that
//! `cargo build` and `pip install .` produce a host that carries its envs. Installs the wasm target with
//! rustup when it is missing. Test guests (hostile_*) are built too; their directory is exported to tests
//! as `SANDGYM_GUEST_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Envs embedded in the host, in `sandgym envs` order.
const BUNDLED: &[&str] = &[
    "countdown",
    "parity",
    "tau-retail",
    "tau-airline",
    "reasoning",
    "code-math",
];
/// Guests built for tests and docs but not embedded.
const TEST_GUESTS: &[&str] = &["template", "hostile", "hostile-import"];
const TARGET: &str = "wasm32-wasip1";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let envs = root.join("envs");
    for watched in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "sdk",
        "countdown",
        "parity",
        "template",
        "hostile",
        "hostile-import",
        "tau-common",
        "tau-retail",
        "tau-airline",
        "reasoning",
        "code-math",
    ] {
        println!("cargo:rerun-if-changed={}", envs.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("rust/sandgym-abi").display()
    );
    println!("cargo:rerun-if-env-changed=SANDGYM_GUEST_TARGET_DIR");

    // Guests get a target directory of their own: the outer cargo holds the lock on the host's.
    let target_dir = std::env::var_os("SANDGYM_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm-guests"));
    ensure_wasm_target();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&envs) // envs/.cargo/config.toml is found from the working directory
        .args(["build", "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // Only the guests the host needs: an env crate still in progress elsewhere in envs/ cannot break it.
    for package in BUNDLED.iter().chain(TEST_GUESTS) {
        command.arg("-p").arg(format!("sandgym-env-{package}"));
    }
    // The outer build's settings (flags, profile, target) must not leak into the guest build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && key != "CARGO_MAKEFLAGS"
            && key != "CARGO_NET_OFFLINE"
            && !key.starts_with("CARGO_REGISTRIES")
            && !key.starts_with("CARGO_HTTP")
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
        {
            command.env_remove(&key);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest envs: {e}"));
    if !status.success() {
        panic!(
            "building the guest envs in {} failed (see the output above)",
            envs.display()
        );
    }
    let guest_dir = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=SANDGYM_GUEST_DIR={}", guest_dir.display());

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut generated = String::from(
        "/// Bundled envs: (name, version, wasm bytes).\npub(crate) static BUNDLED: &[(&str, u32, &[u8])] = &[\n",
    );
    for name in BUNDLED {
        // Package `sandgym-env-{name}` builds `{name}.wasm` with `-` spelled `_` (a Rust lib name).
        let artifact = name.replace('-', "_");
        let source = guest_dir.join(format!("{artifact}.wasm"));
        let copy = out_dir.join(format!("{artifact}.wasm"));
        std::fs::copy(&source, &copy)
            .unwrap_or_else(|e| panic!("missing guest {}: {e}", source.display()));
        let version = declared_version(&envs.join(name).join("src/lib.rs"));
        generated.push_str(&format!(
            "    ({name:?}, {version}, include_bytes!({:?})),\n",
            copy.display().to_string()
        ));
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("bundled.rs"), generated).unwrap();
}

/// The env's `pub const VERSION: u32 = N;`, so that the host knows bundled ids (`name-vN`) without compiling
/// the guests (Gymnasium registration at `import sandgym`); a test checks it against the guests' own info.
fn declared_version(lib: &Path) -> u32 {
    let source = std::fs::read_to_string(lib)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lib.display()));
    source
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("pub const VERSION: u32 = ")?
                .strip_suffix(';')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "{} must declare `pub const VERSION: u32 = N;` (the env's version, as its info reports it)",
                lib.display()
            )
        })
}

fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot
        .map(|s| s.join("lib/rustlib").join(TARGET).exists())
        .unwrap_or(false);
    if installed {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the `{TARGET}` target is missing and `rustup target add {TARGET}` failed; install it and retry"
        ),
    }
}
