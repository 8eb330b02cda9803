//! `disconnect NODE`, `retry`, `purge`: tinc's operator commands, sent to the running daemon.
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

/// `meshd disconnect NODE`.
pub fn disconnect(netdir: &NetDir, node: &str) -> Result<i32> {
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
