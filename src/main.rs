//! The `meshd` command: parse the command line and dispatch, nothing else.

fn main() {
    std::process::exit(meshd::cli::main_with_args(std::env::args_os().collect()));
}
