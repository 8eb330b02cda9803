//! The joiner's side: connect to the inviter named in the URL, verify it against the URL's key
//! hash, redeem the cookie, build the new network directory in a temporary directory beside
//! its final place and move it there only once the inviter has stored our key — a failed join
//! leaves nothing behind.

use super::contents::{parse_invitation, JoinPlan, VIP_DOWN, VIP_UP};
use super::exchange::{self, Channel, JoinerHandshake, Kind};
use super::url::InvitationUrl;
use crate::config::netdir::{MESHD_CONF, TINC_CONF};
use crate::config::{write_atomic, NetDir};
use crate::keys::PrivateKey;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::{self, DirBuilder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Timeout for connecting and for every message from the inviter.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the new network directory goes.
#[derive(Debug, Clone)]
pub enum JoinTarget {
    /// `-c DIR` / `-n NET` / `$NETNAME`: exactly there.
    Given(NetDir),
    /// Neither: `BASE/NETNAME` from the invitation (`BASE` is `$MESHD_CONFDIR_BASE`).
    FromInvitation {
        /// The configuration base directory.
        base: PathBuf,
    },
}

/// A completed join.
#[derive(Debug)]
pub struct CompletedJoin {
    /// The new network directory.
    pub netdir: NetDir,
    /// What the invitation said.
    pub plan: JoinPlan,
    /// The inviter's address.
    pub inviter: SocketAddr,
}

/// Refuses a target that already holds something: nothing must be overwritten.
pub fn check_target_free(root: &Path) -> Result<()> {
    for conf in [MESHD_CONF, TINC_CONF] {
        if root.join(conf).exists() {
            bail!(
                "Configuration file {} already exists! Choose another -n NET or -c DIR",
                root.join(conf).display()
            );
        }
    }
    match fs::read_dir(root) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty; choose another -n NET or -c DIR",
                    root.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", root.display())),
    }
}

struct Conn {
    stream: TcpStream,
}

/// The inviter refused the invitation after the handshake (unknown, used, expired, ...);
/// the text is the inviter's one line for the joiner.
#[derive(Debug, thiserror::Error)]
#[error("the inviter refused: {0}")]
pub struct InviterRefused(pub String);

impl Conn {
    fn send(&mut self, body: &[u8]) -> Result<()> {
        self.stream
            .write_all(&exchange::frame(body)?)
            .context("cannot send to the inviter")
    }

    fn receive(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len).map_err(|e| lost(&e))?;
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).map_err(|e| lost(&e))?;
        Ok(body)
    }

    fn receive_sealed(&mut self, channel: &mut Channel) -> Result<(Kind, Vec<u8>)> {
        let body = self.receive()?;
        let (kind, payload) = channel.open(&body)?;
        if kind == Kind::Error {
            let why: String = String::from_utf8_lossy(&payload)
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            return Err(InviterRefused(why).into());
        }
        Ok((kind, payload))
    }
}

fn lost(e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            anyhow!("the inviter did not answer within {} s", TIMEOUT.as_secs())
        }
        std::io::ErrorKind::UnexpectedEof => anyhow!("the inviter closed the connection"),
        _ => anyhow!("connection to the inviter lost: {e}"),
    }
}

fn connect(url: &InvitationUrl, log: &mut dyn FnMut(&str)) -> Result<(TcpStream, SocketAddr)> {
    let port = url.port_or_default();
    let addrs: Vec<SocketAddr> = (url.host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("Error looking up {} port {port}", url.host))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                log(&format!("Connected to {} port {port}...", addr.ip()));
                s.set_read_timeout(Some(TIMEOUT))?;
                s.set_write_timeout(Some(TIMEOUT))?;
                return Ok((s, addr));
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) => Err(anyhow!(
            "Could not connect to {} port {}: {e} (the inviter; is its daemon running?)",
            addr.ip(),
            addr.port()
        )),
        None => Err(anyhow!("{} resolves to no address", url.host)),
    }
}

/// Where a join leaves the `tinc-up` it generated from the invitation until it is enabled.
pub const TINC_UP_INVITATION: &str = "tinc-up.invitation";

/// Enables the generated script: `tinc-up.invitation` becomes the executable `tinc-up`.
pub fn enable_tinc_up(root: &Path) -> Result<()> {
    let from = root.join(TINC_UP_INVITATION);
    let to = root.join("tinc-up");
    fs::set_permissions(&from, fs::Permissions::from_mode(0o755))
        .and_then(|()| fs::rename(&from, &to))
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// Redeems `url` and writes the new network directory. `port` is this node's UDP port
/// (written to its host file; default 655). `log` gets progress lines for the user.
pub fn join(
    url: &InvitationUrl,
    target: &JoinTarget,
    port: Option<u16>,
    log: &mut dyn FnMut(&str),
) -> Result<CompletedJoin> {
    if let JoinTarget::Given(nd) = target {
        check_target_free(&nd.root)?;
    }
    let (stream, inviter) = connect(url, log)?;
    let mut conn = Conn { stream };
    let handshake = JoinerHandshake::start(&mut rand::rngs::OsRng);
    conn.send(handshake.hello())?;
    let hello = conn.receive()?;
    let (mut channel, _key) = handshake.finish(&hello, &url.key_hash)?;
    conn.send(&channel.seal(Kind::Cookie, &url.cookie)?)?;
    let (kind, invitation) = conn.receive_sealed(&mut channel)?;
    if kind != Kind::Invitation {
        bail!("the inviter sent {kind:?} instead of the invitation");
    }
    let text =
        String::from_utf8(invitation).map_err(|_| anyhow!("the invitation is not UTF-8 text"))?;
    let give_up = |conn: &mut Conn, channel: &mut Channel, why: &str| {
        if let Ok(sealed) = channel.seal(Kind::Error, why.as_bytes()) {
            let _ = conn.send(&sealed);
        }
    };
    let plan = match parse_invitation(&text) {
        Ok(p) => p,
        Err(e) => {
            give_up(&mut conn, &mut channel, &e.to_string());
            return Err(e.into());
        }
    };
    let netdir = match target {
        JoinTarget::Given(nd) => nd.clone(),
        JoinTarget::FromInvitation { base } => match &plan.netname {
            Some(net) => NetDir {
                netname: Some(net.clone()),
                ..NetDir::new(base.join(net))
            },
            None => {
                let why = "the invitation names no network: give -n NET or -c DIR";
                give_up(&mut conn, &mut channel, "the joiner needs a network name");
                bail!(why);
            }
        },
    };
    if let Err(e) = check_target_free(&netdir.root) {
        give_up(&mut conn, &mut channel, "the joiner's directory is taken");
        return Err(e);
    }
    for r in &plan.refused {
        log(&format!("Ignored from the invitation: {r}"));
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let staging = match stage(&netdir.root, &plan, &key, port, &text) {
        Ok(s) => s,
        Err(e) => {
            give_up(
                &mut conn,
                &mut channel,
                "the joiner could not write its files",
            );
            return Err(e);
        }
    };
    let finished = (|| -> Result<()> {
        conn.send(&channel.seal(Kind::PublicKey, key.public().to_string().as_bytes())?)?;
        let (kind, _) = conn.receive_sealed(&mut channel)?;
        if kind != Kind::Accepted {
            bail!("the inviter sent {kind:?} instead of accepting");
        }
        // An empty directory may sit where the network goes (rename replaces it).
        if netdir.root.is_dir() {
            fs::remove_dir(&netdir.root)
                .with_context(|| format!("cannot replace {}", netdir.root.display()))?;
        }
        fs::rename(&staging, &netdir.root)
            .with_context(|| format!("cannot move the new network to {}", netdir.root.display()))
    })();
    if let Err(e) = finished {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    log(&format!(
        "Configuration stored in: {}",
        netdir.root.display()
    ));
    Ok(CompletedJoin {
        netdir,
        plan,
        inviter,
    })
}

/// Writes the whole network directory into a fresh temporary directory (a dotfile, mode 0700)
/// beside `root`: the private key 0600, `invitation-data` 0600, host files 0644, scripts 0755,
/// each file written atomically.
fn stage(
    root: &Path,
    plan: &JoinPlan,
    key: &PrivateKey,
    port: Option<u16>,
    raw: &str,
) -> Result<PathBuf> {
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "net".into());
    let staging = parent.join(format!(".{base}.join-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let result = (|| -> Result<()> {
        // The staging directory becomes the network directory: 0700 like `init` makes it
        // (it holds the new private key and the scripts root runs).
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .and_then(|()| fs::set_permissions(&staging, fs::Permissions::from_mode(0o700)))
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let hosts = staging.join("hosts");
        DirBuilder::new()
            .mode(0o755)
            .create(&hosts)
            .with_context(|| format!("cannot create {}", hosts.display()))?;
        let cache = staging.join("cache");
        DirBuilder::new()
            .mode(0o755)
            .create(&cache)
            .with_context(|| format!("cannot create {}", cache.display()))?;
        let put = |rel: &str, text: &str, mode: u32| {
            let p = staging.join(rel);
            write_atomic(&p, text.as_bytes(), mode)
                .with_context(|| format!("cannot write {}", p.display()))
        };
        for h in &plan.hosts {
            put(&format!("hosts/{}", h.name), &h.text, 0o644)?;
        }
        let own = plan.own_host_file(port, &key.public().to_string());
        put(&format!("hosts/{}", plan.name), &own, 0o644)?;
        // As tinc: a placeholder is enabled at once; a script generated from the
        // invitation's Ifconfig/Route lines waits for review as `tinc-up.invitation`.
        if plan.tinc_up_commands.is_empty() {
            put("tinc-up", &plan.tinc_up(), 0o755)?;
        } else {
            put(TINC_UP_INVITATION, &plan.tinc_up(), 0o644)?;
        }
        if plan.has_vips() {
            put("vip-up", VIP_UP, 0o755)?;
            put("vip-down", VIP_DOWN, 0o755)?;
        }
        put("invitation-data", raw, 0o600)?;
        let key_path = staging.join("ed25519_key.priv");
        crate::keyfile::save_private_key(key, &key_path)
            .with_context(|| format!("cannot write {}", key_path.display()))?;
        // Written last, as `init` does: its presence marks the directory as initialised.
        put(TINC_CONF, &plan.tinc_conf(), 0o644)
    })();
    match result {
        Ok(()) => Ok(staging),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}
