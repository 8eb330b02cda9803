//! The `meshd` command: parse the command line and dispatch, nothing else.

use clap::Parser;

fn main() {
    let cli = meshd::cli::Cli::parse();
    let code = match meshd::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("meshd: {err:#}");
            1
        }
    };
    std::process::exit(code);
}
