//! From the process's arguments to an exit code: parse with clap, turn clap's usage errors into
//! tinc's messages and exit status 1 (`Too many arguments!`, `Not enough arguments!`,
//! `Invalid number of arguments.`, ``Unknown command `X'.``), run, report errors.

use super::Cli;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// Where the usage help is.
pub(super) const TRY_HELP: &str = "Try `meshd --help' for more information.";

/// Global options that take a value (their value is not the command word).
const OPTIONS_WITH_VALUE: &[&str] = &["-c", "--config", "-n", "--net", "--pidfile"];

/// Parses `args` (the program name first) and runs the command; returns the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    run_args(args, false)
}

/// [`main_with_args`]; `in_command_mode` refuses a line that names no command (it would start
/// a second command mode reading the same stdin).
pub(super) fn run_args(args: Vec<OsString>, in_command_mode: bool) -> i32 {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut args = args;
    // Commands are case-insensitive words, as in tinc (`meshd -c DIR GET Port`).
    if let Some((at, word)) = command_word(&words) {
        let cmd = cli_command();
        let known = cmd
            .get_subcommands()
            .flat_map(|s| std::iter::once(s.get_name()).chain(s.get_all_aliases()))
            .find(|name| name.eq_ignore_ascii_case(word));
        if let Some(name) = known {
            args[at] = name.into();
        }
    }
    let parsed = cli_command()
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err, &words),
    };
    if in_command_mode && cli.command.is_none() {
        eprintln!("Not enough arguments!");
        return 1;
    }
    match super::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("meshd: {err:#}");
            1
        }
    }
}

/// meshd's clap command, where a repeated option overrides itself on every level, as in
/// tinc and tincd (`-c DIR -c DIR`, `start -D -d -d2`, `--pidfile=F --pidfile=F`).
fn cli_command() -> clap::Command {
    let cmd = Cli::command().args_override_self(true);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names.iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| sub.args_override_self(true))
    })
}

/// The command word and its index: the first argument after the program name that is neither
/// an option nor the value of one.
fn command_word(words: &[String]) -> Option<(usize, &str)> {
    let mut it = words.iter().enumerate().skip(1);
    while let Some((i, w)) = it.next() {
        if OPTIONS_WITH_VALUE.contains(&w.as_str()) {
            it.next();
        } else if !w.starts_with('-') {
            return Some((i, w));
        }
    }
    None
}

/// Whether clap's error is about an argument before the command word (an unknown global
/// option), rather than one of the command's.
fn before_command(err: &clap::Error, words: &[String], command_at: usize) -> bool {
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return false;
    };
    let arg = arg.split([' ', '=']).next().unwrap_or_default();
    words[..command_at]
        .iter()
        .any(|w| w.split('=').next() == Some(arg))
}

/// Reports a clap error as tinc would; returns the exit code (0 for help and version).
fn usage_error(err: &clap::Error, words: &[String]) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return 0;
        }
        ErrorKind::InvalidSubcommand => {
            let name = match err.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => command_word(words)
                    .map(|(_, w)| w)
                    .unwrap_or_default()
                    .to_string(),
            };
            eprintln!("Unknown command `{name}'.\n{TRY_HELP}");
            return 1;
        }
        _ => {}
    }
    let command = match command_word(words) {
        Some((at, _)) if before_command(err, words, at) => None,
        Some((_, w)) => Some(w.to_ascii_lowercase()),
        None => None,
    };
    let too_many = matches!(
        err.kind(),
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues
    );
    let too_few = matches!(
        err.kind(),
        ErrorKind::MissingRequiredArgument
            | ErrorKind::TooFewValues
            | ErrorKind::WrongNumberOfValues
    );
    match command.as_deref() {
        Some("dump" | "list") if too_many || too_few => {
            eprintln!("Invalid number of arguments.\n{TRY_HELP}");
        }
        Some("info" | "connect" | "disconnect" | "debug") if too_many || too_few => {
            eprintln!("Invalid number of arguments.")
        }
        // tincd's own words for a stray word after `start`/`restart` (it parses their options).
        Some("start" | "restart") if err.kind() == ErrorKind::UnknownArgument => {
            match err.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(arg)) if !arg.starts_with('-') => {
                    eprintln!("meshd: unrecognized argument '{arg}'\n{TRY_HELP}")
                }
                _ => {
                    let _ = err.print();
                }
            }
        }
        Some(_) if too_many => eprintln!("Too many arguments!"),
        Some(_) if too_few => eprintln!("Not enough arguments!"),
        _ => {
            // An unknown option before the command, a value that does not parse, ...: clap's
            // own message says which and what is expected.
            let _ = err.print();
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn finds_the_command_word() {
        assert_eq!(
            command_word(&w("meshd -c dir -b stop extra")),
            Some((4, "stop"))
        );
        assert_eq!(
            command_word(&w("meshd --pidfile p --force pid")),
            Some((4, "pid"))
        );
        assert_eq!(command_word(&w("meshd -n net")), None);
    }
}
