//! The `sandgym` binary for cargo users; pip installs the same CLI as a console script.

fn main() {
    std::process::exit(sandgym_cli::main(std::env::args().collect()));
}
