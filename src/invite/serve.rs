//! The inviter's side of one join connection: authenticate with the invitation key, take the
//! invitation named by the joiner's cookie, hand it over, store the joiner's public key as
//! `hosts/NEWNODE`. Async over any byte stream; file work runs on the blocking pool.

use super::exchange::{self, inviter_respond, Channel, ExchangeError, Kind};
use super::store::{Claim, ClaimError, Store};
use super::url::COOKIE_LEN;
use crate::config::NetDir;
use crate::keys::PublicKey;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the inviter waits for each message of the joiner.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the serving side needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The inviter's network directory (`invitations/`, `hosts/`).
    pub netdir: NetDir,
    /// This node's name (an invitation may not name it).
    pub self_name: String,
    /// `InvitationExpire`.
    pub expire: Duration,
}

/// A join that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The new node.
    pub node: String,
    /// Its public key, now in `hosts/NODE`.
    pub public_key: PublicKey,
}

/// Why a join connection ended without a new node.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The connection broke or timed out.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The exchange failed (not meshd, bad message, ...).
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// The joiner sent something out of order.
    #[error("the joiner sent {0}")]
    Protocol(String),
    /// No invitation key: nothing to redeem.
    #[error(
        "tried to use non-existing invitation: we don't have an invitation key (no {0}), so no \
         invitation is outstanding"
    )]
    NoKey(String),
    /// The cookie named no usable invitation.
    #[error("{0}")]
    Claim(#[from] ClaimError),
    /// The invitation cannot be completed (told to the joiner too).
    #[error("{0}")]
    Refused(String),
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, ServeError> {
    let read = async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ServeError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the joiner went silent",
        ))),
    }
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, body: &[u8]) -> Result<(), ServeError> {
    s.write_all(&exchange::frame(body)?).await?;
    s.flush().await?;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))
}

/// Serves one join connection to its end.
pub async fn serve_join<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    cfg: &ServeConfig,
) -> Result<Accepted, ServeError> {
    let hello = read_frame(stream).await?;
    let store = Store::new(&cfg.netdir);
    let key = {
        let store = store.clone();
        blocking(move || store.load_key()).await?
    };
    let key = match key {
        Ok(Some(k)) => k,
        Ok(None) => {
            let _ = write_frame(
                stream,
                &exchange::refusal("this node has no outstanding invitations"),
            )
            .await;
            return Err(ServeError::NoKey(store.key_file().display().to_string()));
        }
        Err(e) => {
            let _ = write_frame(
                stream,
                &exchange::refusal("the inviter cannot read its invitation key (see its log)"),
            )
            .await;
            return Err(ServeError::Refused(format!("{e:#}")));
        }
    };
    let public = key.public();
    // An X25519 exchange and a signature for whoever connects: off the
    // runtime's thread, which also carries the mesh's packets.
    let (mut channel, reply) =
        blocking(move || inviter_respond(&hello, &key, &mut rand::rngs::OsRng)).await??;
    write_frame(stream, &reply).await?;

    let (kind, cookie) = channel.open(&read_frame(stream).await?)?;
    if kind != Kind::Cookie || cookie.len() != COOKIE_LEN {
        return Err(ServeError::Protocol(format!(
            "a {kind:?} message of {} bytes where the cookie belongs",
            cookie.len()
        )));
    }
    let claimed = {
        let store = store.clone();
        let expire = cfg.expire;
        blocking(move || store.claim(&cookie, &public, expire, SystemTime::now())).await?
    };
    let claim = match claimed {
        Ok(c) => c,
        Err(e) => {
            send_error(stream, &mut channel, &e.joiner_message()).await;
            return Err(e.into());
        }
    };
    match finish(stream, &mut channel, cfg, &claim).await {
        Ok(accepted) => {
            blocking(move || claim.consume()).await??;
            let sealed = channel.seal(Kind::Accepted, b"")?;
            // The key is stored: the join has happened even if this last message is lost.
            let _ = write_frame(stream, &sealed).await;
            Ok(accepted)
        }
        Err(e) => {
            let _ = blocking(move || claim.restore()).await;
            Err(e)
        }
    }
}

/// Hands the invitation over and stores the joiner's key; the caller restores the claim on error.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    channel: &mut Channel,
    cfg: &ServeConfig,
    claim: &Claim,
) -> Result<Accepted, ServeError> {
    let node = claim.invitee.clone();
    let host_file = cfg.netdir.host_file(&node);
    if node == cfg.self_name || host_file.exists() {
        let why = format!("node {node} already exists in the inviter's network");
        send_error(stream, channel, &why).await;
        return Err(ServeError::Refused(why));
    }
    write_frame(
        stream,
        &channel.seal(Kind::Invitation, claim.contents.as_bytes())?,
    )
    .await?;
    let (kind, payload) = channel.open(&read_frame(stream).await?)?;
    if kind == Kind::Error {
        return Err(ServeError::Refused(format!(
            "the joiner gave up: {}",
            String::from_utf8_lossy(&payload)
        )));
    }
    if kind != Kind::PublicKey {
        return Err(ServeError::Protocol(format!(
            "{kind:?} where its public key belongs"
        )));
    }
    let text = String::from_utf8_lossy(&payload).into_owned();
    let public_key = match PublicKey::from_tinc_base64(&text) {
        Ok(k) => k,
        Err(e) => {
            let why = format!("its public key is invalid: {e}");
            send_error(stream, channel, "your public key is invalid").await;
            return Err(ServeError::Protocol(why));
        }
    };
    let line = format!("Ed25519PublicKey = {public_key}\n");
    let written = blocking(move || {
        // Complete or absent, never torn; and never over an existing member's file.
        crate::config::write::write_new_atomic(&host_file, line.as_bytes(), 0o644)
            .map_err(|e| format!("cannot write {}: {e}", host_file.display()))
    })
    .await?;
    if let Err(why) = written {
        send_error(
            stream,
            channel,
            "the inviter could not store your key (see its log)",
        )
        .await;
        return Err(ServeError::Refused(why));
    }
    Ok(Accepted {
        node: node.into_string(),
        public_key,
    })
}

async fn send_error<S: AsyncWrite + Unpin>(stream: &mut S, channel: &mut Channel, why: &str) {
    if let Ok(sealed) = channel.seal(Kind::Error, why.as_bytes()) {
        let _ = write_frame(stream, &sealed).await;
    }
}
