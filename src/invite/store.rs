//! The inviter's `invitations/` directory: the invitation key, one file per outstanding
//! invitation (named by a hash of its cookie, so reading the directory does not give the
//! cookie away), expiry by file time, single use by an atomic rename.

use crate::config::{NetDir, NodeName};
use crate::invite::url::COOKIE_LEN;
use crate::keys::{invitation_file_name, PrivateKey, PublicKey};
use anyhow::{anyhow, Context, Result};
use rand_core::CryptoRngCore;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// tinc's `InvitationExpire` default: one week.
pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(604_800);
/// The invitation key's file name inside `invitations/`.
pub const KEY_FILE: &str = "ed25519_key.priv";
/// Suffix of an invitation being redeemed.
const USED_SUFFIX: &str = ".used";
/// Largest invitation file served (one sealed message).
pub const MAX_INVITATION_SIZE: u64 = 60_000;

/// `InvitationExpire` from the configuration (default one week).
pub fn invitation_expire(server: &crate::config::ServerConfig) -> Result<Duration> {
    match server.get("InvitationExpire") {
        None => Ok(DEFAULT_EXPIRE),
        Some(line) => crate::config::parse_duration(&line.value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                anyhow!(
                    "{}: bad value for InvitationExpire: '{}' (seconds, or e.g. 168h)",
                    line.location(),
                    line.value
                )
            }),
    }
}

/// An outstanding invitation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outstanding {
    /// The file's name under `invitations/` (24 characters).
    pub file_name: String,
    /// The node it invites.
    pub invitee: String,
    /// When it was created (Unix seconds).
    pub created: u64,
    /// When it expires (Unix seconds).
    pub expires: u64,
    /// Whether a join is redeeming it right now.
    pub in_use: bool,
}

/// What [`Store::create`] made.
pub struct Created {
    /// The secret for the URL.
    pub cookie: [u8; COOKIE_LEN],
    /// The invitation public key (its hash goes in the URL).
    pub key: PublicKey,
    /// The invitation file.
    pub file: PathBuf,
}

/// Why an invitation could not be redeemed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// No file for that cookie: never issued, revoked, already used, or being used right now.
    #[error("tried to use non-existing invitation (never issued, revoked or already used)")]
    Unknown,
    /// Past its expiry.
    #[error("tried to use expired invitation for {invitee} (expired {ago} s ago)")]
    Expired {
        /// The node it invited.
        invitee: NodeName,
        /// Seconds since it expired.
        ago: u64,
    },
    /// The file is not an invitation.
    #[error("invitation file {0}")]
    Damaged(String),
    /// The invitation file or directory is open to group or others (the text says how to fix it).
    #[error("refused: {0}")]
    Insecure(String),
    /// A file system error.
    #[error("invitation store: {0}")]
    Io(#[from] io::Error),
}

impl ClaimError {
    /// The one line the joiner is told.
    pub fn joiner_message(&self) -> String {
        match self {
            ClaimError::Unknown => {
                "this invitation is unknown or was already used (each URL works once)".into()
            }
            ClaimError::Expired { .. } => "this invitation has expired: ask for a new one".into(),
            ClaimError::Damaged(_) | ClaimError::Io(_) | ClaimError::Insecure(_) => {
                "the inviter could not read this invitation (see its log)".into()
            }
        }
    }
}

/// An invitation taken out of the directory for one join: restored if the join fails,
/// deleted when it succeeds.
#[derive(Debug)]
pub struct Claim {
    original: PathBuf,
    used: PathBuf,
    /// The file's contents.
    pub contents: String,
    /// The node it invites.
    pub invitee: NodeName,
}

impl Claim {
    /// The join failed before the new node's key was stored: the invitation is usable again.
    pub fn restore(self) -> io::Result<()> {
        fs::rename(&self.used, &self.original)
    }

    /// The join completed: the invitation is gone for good.
    pub fn consume(self) -> io::Result<()> {
        fs::remove_file(&self.used)
    }
}

/// The `invitations/` directory of a network.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `name` looks like an invitation file name (24 URL-safe base64 characters).
fn is_invitation_name(name: &str) -> bool {
    name.len() == 24
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Name = X` of an invitation file's first line.
fn invitee_of(contents: &str) -> Option<NodeName> {
    let first = contents.lines().next()?.trim();
    let var_end = first.find(|c: char| c == '=' || c.is_whitespace())?;
    if !first[..var_end].eq_ignore_ascii_case("Name") {
        return None;
    }
    let name = first[var_end..]
        .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
        .trim();
    NodeName::new(name).ok()
}

impl Store {
    /// The store of a network directory.
    pub fn new(netdir: &NetDir) -> Store {
        Store {
            dir: netdir.invitations_dir(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `invitations/ed25519_key.priv`.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// Refuses the directory if group or others have any access to it (they could read or
    /// replace invitations).
    fn check_dir_mode(&self, meta: &fs::Metadata) -> Result<(), String> {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: mode {mode:04o} lets group/others read or replace invitations; run chmod 700 {}",
                self.dir.display(),
                self.dir.display()
            ));
        }
        Ok(())
    }

    /// Creates the directory (0700), or refuses one that group or others can enter.
    fn ensure_dir(&self) -> Result<()> {
        match fs::metadata(&self.dir) {
            Ok(meta) => self.check_dir_mode(&meta).map_err(|why| anyhow!(why)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .mode(0o700)
                .create(&self.dir)
                .and_then(|()| fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)))
                .with_context(|| format!("cannot create {}", self.dir.display())),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        }
    }

    /// The invitation key, if there is one (the daemon reads it for every join).
    pub fn load_key(&self) -> Result<Option<PrivateKey>> {
        let path = self.key_file();
        if !path.exists() {
            return Ok(None);
        }
        crate::keyfile::load_private_key(&path)
            .map(Some)
            .with_context(|| format!("cannot load the invitation key {}", path.display()))
    }

    /// Every invitation file, expired or not, with its invitee.
    pub fn all(&self, expire: Duration) -> Result<Vec<Outstanding>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (base, in_use) = match name.strip_suffix(USED_SUFFIX) {
                Some(b) => (b.to_string(), true),
                None => (name.clone(), false),
            };
            if !is_invitation_name(&base) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let created = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let contents = read_limited(&path).unwrap_or_default();
            let invitee = invitee_of(&contents).map_or_else(|| "?".into(), String::from);
            out.push(Outstanding {
                file_name: base,
                invitee,
                created: unix(created),
                expires: unix(created + expire),
                in_use,
            });
        }
        out.sort_by(|a, b| (a.created, &a.file_name).cmp(&(b.created, &b.file_name)));
        Ok(out)
    }

    /// Outstanding (unexpired) invitations.
    pub fn outstanding(&self, expire: Duration, now: SystemTime) -> Result<Vec<Outstanding>> {
        let now = unix(now);
        Ok(self
            .all(expire)?
            .into_iter()
            .filter(|o| o.expires > now)
            .collect())
    }

    /// Deletes expired invitation files; returns them.
    pub fn prune_expired(&self, expire: Duration, now: SystemTime) -> Result<Vec<Outstanding>> {
        let now_s = unix(now);
        let mut gone = Vec::new();
        for o in self.all(expire)? {
            if o.expires <= now_s && !o.in_use {
                let path = self.dir.join(&o.file_name);
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                gone.push(o);
            }
        }
        Ok(gone)
    }

    /// Writes a new invitation file (0600, exclusive) with `contents`; rotates the invitation
    /// key when no invitation is outstanding (as tinc does).
    pub fn create(
        &self,
        contents: &str,
        expire: Duration,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Created> {
        self.ensure_dir()?;
        self.prune_expired(expire, now)?;
        if self.all(expire)?.is_empty() {
            let _ = fs::remove_file(self.key_file());
        }
        let key = match self.load_key()? {
            Some(k) => k,
            None => {
                let k = PrivateKey::generate(rng);
                crate::keyfile::save_private_key(&k, &self.key_file()).with_context(|| {
                    format!(
                        "cannot write the invitation key {}",
                        self.key_file().display()
                    )
                })?;
                k
            }
        };
        let mut cookie = [0u8; COOKIE_LEN];
        rng.fill_bytes(&mut cookie);
        let file = self.dir.join(invitation_file_name(&cookie, &key.public()));
        crate::config::write::write_new_atomic(&file, contents.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", file.display()))?;
        Ok(Created {
            cookie,
            key: key.public(),
            file,
        })
    }

    /// Deletes the invitations for node `what`, or the one whose file name is `what`.
    pub fn revoke(&self, what: &str) -> Result<Vec<Outstanding>> {
        let matching: Vec<Outstanding> = self
            .all(DEFAULT_EXPIRE)?
            .into_iter()
            .filter(|o| o.invitee == what || o.file_name == what)
            .collect();
        for o in &matching {
            let name = if o.in_use {
                format!("{}{USED_SUFFIX}", o.file_name)
            } else {
                o.file_name.clone()
            };
            let path = self.dir.join(name);
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(matching)
    }

    /// Takes the invitation for `cookie` out for one join (atomic rename: a second join with
    /// the same URL finds nothing). Expired invitations are deleted and refused.
    pub fn claim(
        &self,
        cookie: &[u8],
        key: &PublicKey,
        expire: Duration,
        now: SystemTime,
    ) -> Result<Claim, ClaimError> {
        let name = invitation_file_name(cookie, key);
        let original = self.dir.join(&name);
        match fs::metadata(&self.dir) {
            Ok(meta) => self.check_dir_mode(&meta).map_err(ClaimError::Insecure)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ClaimError::Unknown),
            Err(e) => return Err(ClaimError::Io(e)),
        }
        let used = self.dir.join(format!("{name}{USED_SUFFIX}"));
        match fs::rename(&original, &used) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ClaimError::Unknown),
            Err(e) => return Err(ClaimError::Io(e)),
        }
        let fail = |e: ClaimError, used: &Path, original: &Path, keep: bool| {
            if keep {
                let _ = fs::rename(used, original);
            } else {
                let _ = fs::remove_file(used);
            }
            e
        };
        let meta = fs::metadata(&used).map_err(|e| fail(e.into(), &used, &original, true))?;
        crate::keyfile::perms::check_secret_file(&original, &meta)
            .map_err(|e| fail(ClaimError::Insecure(e.to_string()), &used, &original, true))?;
        let created = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let contents = read_limited(&used).map_err(|e| fail(e, &used, &original, true))?;
        let invitee = invitee_of(&contents).ok_or_else(|| {
            fail(
                ClaimError::Damaged(format!("{name} does not start with `Name = NODE`")),
                &used,
                &original,
                true,
            )
        })?;
        if created + expire <= now {
            let ago = now
                .duration_since(created + expire)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Err(fail(
                ClaimError::Expired { invitee, ago },
                &used,
                &original,
                false,
            ));
        }
        Ok(Claim {
            original,
            used,
            contents,
            invitee,
        })
    }
}

fn read_limited(path: &Path) -> Result<String, ClaimError> {
    let meta = fs::metadata(path)?;
    if meta.len() > MAX_INVITATION_SIZE {
        return Err(ClaimError::Damaged(format!(
            "{} is larger than {MAX_INVITATION_SIZE} bytes",
            path.display()
        )));
    }
    let bytes = fs::read(path)?;
    String::from_utf8(bytes)
        .map_err(|_| ClaimError::Damaged(format!("{} is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&NetDir::new(dir.path()));
        (dir, store)
    }

    const WEEK: Duration = DEFAULT_EXPIRE;

    #[test]
    fn create_stores_hashed_name_0600_in_0700_dir() {
        let (_d, s) = store();
        let now = SystemTime::now();
        let c = s.create("Name = beta\n", WEEK, now, &mut OsRng).unwrap();
        let name = c.file.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, invitation_file_name(&c.cookie, &c.key));
        // The cookie itself is not in the directory, neither as name nor content.
        let cookie_text = crate::keys::base64::encode_urlsafe(&c.cookie);
        for e in fs::read_dir(s.dir()).unwrap() {
            let e = e.unwrap();
            assert!(!e.file_name().to_string_lossy().contains(&cookie_text));
            assert!(!fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(&cookie_text));
        }
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&c.file), 0o600);
        assert_eq!(mode(s.dir()), 0o700);
        assert_eq!(mode(&s.key_file()), 0o600);
        let list = s.outstanding(WEEK, now).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].file_name.as_str(), list[0].invitee.as_str()),
            (name.as_str(), "beta")
        );
    }

    #[test]
    fn claim_is_single_use_and_restorable() {
        let (_d, s) = store();
        let now = SystemTime::now();
        let c = s
            .create("Name = beta\nConnectTo = a\n", WEEK, now, &mut OsRng)
            .unwrap();
        let claim = s.claim(&c.cookie, &c.key, WEEK, now).unwrap();
        assert_eq!(claim.invitee, "beta");
        // While one join holds it, a second finds nothing.
        assert!(matches!(
            s.claim(&c.cookie, &c.key, WEEK, now),
            Err(ClaimError::Unknown)
        ));
        assert!(s.outstanding(WEEK, now).unwrap()[0].in_use);
        // A failed join gives it back.
        claim.restore().unwrap();
        let claim = s.claim(&c.cookie, &c.key, WEEK, now).unwrap();
        claim.consume().unwrap();
        assert!(matches!(
            s.claim(&c.cookie, &c.key, WEEK, now),
            Err(ClaimError::Unknown)
        ));
        assert!(s.outstanding(WEEK, now).unwrap().is_empty());
        // A wrong cookie is unknown.
        assert!(matches!(
            s.claim(&[0; 18], &c.key, WEEK, now),
            Err(ClaimError::Unknown)
        ));
    }

    #[test]
    fn expired_invitations_are_refused_deleted_and_pruned() {
        let (_d, s) = store();
        let now = SystemTime::now();
        let c = s
            .create("Name = beta\n", Duration::from_secs(60), now, &mut OsRng)
            .unwrap();
        let later = now + Duration::from_secs(61);
        let e = s
            .claim(&c.cookie, &c.key, Duration::from_secs(60), later)
            .unwrap_err();
        assert!(matches!(e, ClaimError::Expired { .. }), "{e}");
        // The daemon logs it in tinc's words (tinc's invite test looks for them).
        assert!(
            e.to_string()
                .starts_with("tried to use expired invitation for beta"),
            "{e}"
        );
        assert!(e.joiner_message().contains("expired"));
        assert!(
            !c.file.exists(),
            "an expired invitation is deleted when tried"
        );

        let c2 = s.create("Name = gamma\n", WEEK, now, &mut OsRng).unwrap();
        // The file's mtime (whole seconds) may fall in the second after `now`.
        let after = now + WEEK + Duration::from_secs(2);
        assert_eq!(s.outstanding(WEEK, after).unwrap().len(), 0);
        let gone = s.prune_expired(WEEK, after).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(!c2.file.exists());
    }

    #[test]
    fn key_rotates_only_when_no_invitation_is_outstanding() {
        let (_d, s) = store();
        let now = SystemTime::now();
        let a = s.create("Name = a\n", WEEK, now, &mut OsRng).unwrap();
        let b = s.create("Name = b\n", WEEK, now, &mut OsRng).unwrap();
        assert_eq!(a.key, b.key, "one key for all outstanding invitations");
        s.revoke("a").unwrap();
        s.revoke(&b.file.file_name().unwrap().to_string_lossy())
            .unwrap();
        assert!(s.outstanding(WEEK, now).unwrap().is_empty());
        let c = s.create("Name = c\n", WEEK, now, &mut OsRng).unwrap();
        assert_ne!(c.key, a.key, "a new key once the queue was empty");
        assert!(s.revoke("nobody").unwrap().is_empty());
    }

    #[test]
    fn claim_refuses_an_invitation_others_can_read_and_keeps_it() {
        let (_d, s) = store();
        let now = SystemTime::now();
        let c = s.create("Name = beta\n", WEEK, now, &mut OsRng).unwrap();
        // No temporary file beside the invitation and its key.
        assert_eq!(fs::read_dir(s.dir()).unwrap().count(), 2);
        fs::set_permissions(&c.file, fs::Permissions::from_mode(0o644)).unwrap();
        let e = s.claim(&c.cookie, &c.key, WEEK, now).unwrap_err();
        assert!(matches!(e, ClaimError::Insecure(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains(&c.file.display().to_string()), "{text}");
        assert!(text.contains("0644"), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", c.file.display())),
            "{text}"
        );
        assert!(!e.joiner_message().contains(&c.file.display().to_string()));
        assert!(
            c.file.exists(),
            "a refused invitation stays usable once fixed"
        );
        fs::set_permissions(&c.file, fs::Permissions::from_mode(0o600)).unwrap();

        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o750)).unwrap();
        let e = s.claim(&c.cookie, &c.key, WEEK, now).unwrap_err();
        assert!(matches!(e, ClaimError::Insecure(_)), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("chmod 700 {}", s.dir().display())),
            "{e}"
        );
        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o700)).unwrap();
        s.claim(&c.cookie, &c.key, WEEK, now)
            .unwrap()
            .consume()
            .unwrap();
    }

    #[test]
    fn an_invitation_key_others_can_read_is_refused() {
        let (_d, s) = store();
        let now = SystemTime::now();
        s.create("Name = beta\n", WEEK, now, &mut OsRng).unwrap();
        fs::set_permissions(s.key_file(), fs::Permissions::from_mode(0o640)).unwrap();
        let e = format!("{:#}", s.load_key().unwrap_err());
        assert!(e.contains("0640"), "{e}");
        assert!(
            e.contains(&format!("chmod 600 {}", s.key_file().display())),
            "{e}"
        );
    }

    #[test]
    fn open_directory_is_refused() {
        let (_d, s) = store();
        fs::create_dir(s.dir()).unwrap();
        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = s
            .create("Name = a\n", WEEK, SystemTime::now(), &mut OsRng)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("chmod 700"), "{e}");
    }
}
