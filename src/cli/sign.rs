//! `meshd sign [FILE]` and `meshd verify NODE|.|* [FILE]`: tinc 1.1's signed documents
//! (`Signature = NAME UNIXTIME SIG` then the data; the format is `meshd_core::keys::document`).
//! Data comes from FILE or stdin; `verify` prints the data without the header on success.

use crate::config::{load_host_config, load_server_config, NetDir, NodeName};
use crate::keys::{sign_document, verify_document, KeyError, PublicKey};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    match file {
        Some(f) => {
            data = std::fs::read(f).with_context(|| format!("Could not open {}", f.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut data)
                .context("cannot read stdin")?;
        }
    }
    Ok(data)
}

fn write_out(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout();
    match out.write_all(data).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `meshd sign [FILE]`.
pub fn sign(netdir: &NetDir, file: Option<&Path>) -> Result<i32> {
    let server = load_server_config(netdir)?;
    // tinc's words when the key file cannot be opened at all.
    if let Err(e) = std::fs::File::open(&server.private_key_file) {
        bail!(
            "Could not open {}: {}",
            server.private_key_file.display(),
            super::network::strerror(&e)
        );
    }
    let key = crate::keyfile::load_private_key(&server.private_key_file).with_context(|| {
        format!(
            "Could not read private key from {}",
            server.private_key_file.display()
        )
    })?;
    let data = read_input(file)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    write_out(&sign_document(&key, &server.name, now, &data))?;
    Ok(0)
}

/// The Ed25519 key in `hosts/NAME`.
fn host_key(netdir: &NetDir, name: &str) -> Option<PublicKey> {
    let name = NodeName::new(name).ok()?;
    let host = load_host_config(netdir, &name).ok()?;
    PublicKey::from_tinc_base64(host.ed25519_public_key.as_deref()?).ok()
}

/// `meshd verify NODE|.|* [FILE]`: `.` is this node, `*` whoever signed it.
pub fn verify(netdir: &NetDir, signer: &str, file: Option<&Path>) -> Result<i32> {
    let want = match signer {
        "*" => None,
        "." => Some(load_server_config(netdir)?.name),
        name => match NodeName::new(name) {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("Invalid node name '{name}'.");
                return Ok(1);
            }
        },
    };
    let data = read_input(file)?;
    let result = verify_document(&data, |name| {
        if want.as_ref().is_some_and(|w| w.as_str() != name) {
            return None;
        }
        host_key(netdir, name)
    });
    match result {
        Ok((_, _, body)) => {
            write_out(&body)?;
            Ok(0)
        }
        Err(KeyError::UnknownSigner { signer }) if want.as_ref().is_some_and(|w| *w != signer) => {
            eprintln!(
                "Signature is not made by {}.",
                want.as_ref().map_or("", |w| w.as_str())
            );
            Ok(1)
        }
        Err(KeyError::BadSignature { .. }) => {
            eprintln!("Invalid signature.");
            Ok(1)
        }
        // tinc's words when the signer's host file has no usable key.
        Err(KeyError::UnknownSigner { signer }) if netdir.hosts_dir().join(&signer).is_file() => {
            eprintln!(
                "Could not read public key from {}.",
                netdir.hosts_dir().join(&signer).display()
            );
            Ok(1)
        }
        // tinc's words first, then what is wrong.
        Err(e @ (KeyError::MalformedDocument { .. } | KeyError::BadSignerName { .. })) => {
            eprintln!("Invalid input: {e}.");
            Ok(1)
        }
        Err(e) => {
            eprintln!("{e}.");
            Ok(1)
        }
    }
}
