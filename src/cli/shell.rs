//! Command mode (tinc's shell): `meshd -c DIR` with no command reads commands from stdin, one
//! a line, and runs each like a command line with the same global options. On a terminal it
//! prompts (`meshd.NET> `, or `meshd> `) unless `-b`. Blank lines and lines starting with `#`
//! are skipped; `exit` or `quit` ends; `network NET` switches to network NET (`.`: the base
//! directory) for the lines after it. The exit status is 1 if any command failed, else 0.

use super::Cli;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};

/// The global options of `cli`, as arguments to put before each line's words.
fn global_args(cli: &Cli) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["meshd".into()];
    if let Some(c) = &cli.config {
        args.push("-c".into());
        args.push(c.clone().into_os_string());
    }
    if let Some(n) = &cli.net {
        args.push("-n".into());
        args.push(n.into());
    }
    if let Some(p) = &cli.pidfile {
        args.push("--pidfile".into());
        args.push(p.clone().into_os_string());
    }
    if cli.batch {
        args.push("-b".into());
    }
    if cli.force {
        args.push("--force".into());
    }
    args
}

/// `prefix` switched to network `net` (tinc's `network NET` in its shell): `-c`/`-n` replaced
/// by `-n NET`, or by nothing for `.` (the base directory itself).
fn switch_network(prefix: &[OsString], net: &str) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut it = prefix.iter();
    while let Some(a) = it.next() {
        if a == "-c" || a == "-n" {
            it.next();
        } else {
            out.push(a.clone());
        }
    }
    if net != "." {
        out.insert(1, net.into());
        out.insert(1, "-n".into());
    }
    out
}

fn prompt_for(net: Option<&str>) -> String {
    match net {
        Some(n) => format!("meshd.{n}> "),
        None => "meshd> ".to_string(),
    }
}

/// Runs command mode until end of input; returns the exit code.
pub fn command_mode(cli: &Cli) -> Result<i32> {
    let mut prefix = global_args(cli);
    let stdin = std::io::stdin();
    let mut prompt = (!cli.batch && stdin.is_terminal()).then(|| prompt_for(cli.net.as_deref()));
    let mut failed = false;
    let mut input = stdin.lock();
    let mut line = String::new();
    loop {
        if let Some(p) = &prompt {
            let mut out = std::io::stdout();
            // A prompt that cannot be shown is not a reason to stop reading commands.
            let _ = out.write_all(p.as_bytes()).and_then(|()| out.flush());
        }
        line.clear();
        let n = input
            .read_line(&mut line)
            .context("cannot read commands from stdin")?;
        if n == 0 {
            if prompt.is_some() {
                println!();
            }
            break;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            None => continue,
            // As tinc: a comment starts the line; an indented `#` is a (unknown) command.
            Some(_) if line.starts_with('#') => continue,
            Some(w) if w.eq_ignore_ascii_case("exit") || w.eq_ignore_ascii_case("quit") => break,
            Some(w) if w.eq_ignore_ascii_case("network") && words.len() == 2 => {
                let net = words[1];
                let checked = super::network::check_netname(net);
                if let Err(e) = checked {
                    eprintln!("{e}");
                    failed = true;
                } else {
                    if let Ok(Some(warning)) = checked {
                        eprintln!("{warning}");
                    }
                    prefix = switch_network(&prefix, net);
                    if let Some(p) = prompt.as_mut() {
                        *p = prompt_for((net != ".").then_some(net));
                    }
                }
                continue;
            }
            Some(_) => {}
        }
        let mut args = prefix.clone();
        args.extend(words.iter().map(OsString::from));
        if super::usage::run_args(args, true) != 0 {
            failed = true;
        }
    }
    Ok(i32::from(failed))
}
