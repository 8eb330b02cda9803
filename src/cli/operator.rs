//! `connect NODE`, `disconnect NODE`, `retry`, `purge`: tinc's operator commands, sent to the running daemon.
//! As tinc, they print nothing on success (exit 0); a daemon that is not running, or a
//! `disconnect` of a node with no session, is exit 1.

use super::daemon::ask;
use crate::config::NetDir;
use crate::control::{Request, Response};
use anyhow::{bail, Result};

/// Sends `req`; `refused` is what to print when the daemon answers with an error.
fn command(netdir: &NetDir, req: Request, refused: impl Fn(&str) -> String) -> Result<i32> {
    match ask(netdir, &req) {
        Ok(Response::Ok) => Ok(0),
        Ok(Response::Error { message }) => {
            eprintln!("{}", refused(&message));
            Ok(1)
        }
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(err) => {
            eprintln!("{err}");
            Ok(1)
        }
    }
}

/// tinc's check of a node name argument: `Invalid name for node.`, exit 1.
fn valid_node(node: &str) -> bool {
    if crate::config::NodeName::new(node).is_ok() {
        return true;
    }
    eprintln!("Invalid name for node.");
    false
}

/// `meshd connect NODE`: as tinc 1.1, whose daemon does not implement it (its answer is
/// "Could not connect to NODE.", exit 1): meshd handshakes with every node by itself, and
/// `retry` makes it try now.
pub fn connect(netdir: &NetDir, node: &str) -> Result<i32> {
    if !valid_node(node) {
        return Ok(1);
    }
    if let Err(err) = ask(netdir, &Request::Pid) {
        eprintln!("{err}");
        return Ok(1);
    }
    eprintln!(
        "Could not connect to {node}: meshd connects to every node by itself \
         (tinc 1.1's daemon does not implement connect either); `retry` tries now."
    );
    Ok(1)
}

/// `meshd disconnect NODE`.
pub fn disconnect(netdir: &NetDir, node: &str) -> Result<i32> {
    if !valid_node(node) {
        return Ok(1);
    }
    let req = Request::Disconnect {
        node: node.to_string(),
    };
    command(netdir, req, |why| {
        format!("Could not disconnect {node}: {why}.")
    })
}

/// `meshd retry`.
pub fn retry(netdir: &NetDir) -> Result<i32> {
    command(netdir, Request::Retry, |why| {
        format!("Could not retry: {why}.")
    })
}

/// `meshd purge`.
pub fn purge(netdir: &NetDir) -> Result<i32> {
    command(netdir, Request::Purge, |why| {
        format!("Could not purge: {why}.")
    })
}
