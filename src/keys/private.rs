//! The node's Ed25519 private key and tinc 1.1's `ed25519_key.priv` file
//! (part of the keys module): 96 bytes = clamped scalar ‖ nonce prefix ‖ public key.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::VerifyingKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};

use super::{pem, wipe, KeyError, PublicKey, PRIVATE_KEY_PEM_LABEL};

/// Size of the expanded key stored in the file.
const EXPANDED_LEN: usize = 96;
/// Key files larger than this are rejected without reading them whole.
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// A node's Ed25519 identity key, in tinc's expanded form (the seed is not kept).
///
/// `Debug` prints only the public key. The secret scalar and nonce prefix
/// are overwritten on drop.
pub struct PrivateKey {
    expanded: ExpandedSecretKey,
    /// The clamped scalar exactly as stored in the file. `expanded.scalar`
    /// is reduced mod ℓ, so it cannot reproduce the file's bytes.
    scalar_bytes: [u8; 32],
    verifying: VerifyingKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Makes a new key from a random 32-byte seed (expanded with SHA-512,
    /// as tinc's `ed25519_create_keypair` does; the seed is discarded).
    pub fn generate(rng: &mut impl CryptoRngCore) -> PrivateKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(&seed);
        wipe(&mut seed);
        key
    }

    /// Expands an RFC 8032 seed.
    pub(super) fn from_seed(seed: &[u8; 32]) -> PrivateKey {
        let mut h: [u8; 64] = Sha512::digest(seed).into();
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&h[..32]);
        scalar_bytes = curve25519_dalek::scalar::clamp_integer(scalar_bytes);
        let expanded = ExpandedSecretKey::from_bytes(&h);
        wipe(&mut h);
        let verifying = VerifyingKey::from(&expanded);
        PrivateKey {
            expanded,
            scalar_bytes,
            public: PublicKey::from_bytes(verifying.to_bytes()),
            verifying,
        }
    }

    /// Builds a key from the 96 decoded bytes of a key file, checking that
    /// the scalar is clamped and that scalar·B equals the stored public key.
    fn from_expanded(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        if bytes.len() != EXPANDED_LEN {
            return Err(KeyError::Length {
                what: PRIVATE_KEY_PEM_LABEL,
                expected: EXPANDED_LEN,
                actual: bytes.len(),
            });
        }
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&bytes[..32]);
        if scalar_bytes[0] & 0x07 != 0 || scalar_bytes[31] & 0xc0 != 0x40 {
            wipe(&mut scalar_bytes);
            return Err(KeyError::NotClamped);
        }
        let mut h = [0u8; 64];
        h.copy_from_slice(&bytes[..64]);
        let expanded = ExpandedSecretKey::from_bytes(&h);
        wipe(&mut h);
        let verifying = VerifyingKey::from(&expanded);
        if verifying.as_bytes()[..] != bytes[64..] {
            wipe(&mut scalar_bytes);
            return Err(KeyError::PublicKeyMismatch);
        }
        Ok(PrivateKey {
            expanded,
            scalar_bytes,
            public: PublicKey::from_bytes(verifying.to_bytes()),
            verifying,
        })
    }

    /// Parses the contents of an `ed25519_key.priv` file. Lines before the
    /// `-----BEGIN ED25519 PRIVATE KEY-----` line are ignored; the base64
    /// lines may be split anywhere; the END line is required; the block must
    /// hold exactly 96 bytes whose public half matches the secret scalar.
    pub fn from_pem_str(text: &str) -> Result<PrivateKey, KeyError> {
        Self::from_pem_bytes(text.as_bytes())
    }

    fn from_pem_bytes(text: &[u8]) -> Result<PrivateKey, KeyError> {
        let mut bytes = pem::read_pem(text, PRIVATE_KEY_PEM_LABEL)?;
        let key = Self::from_expanded(&bytes);
        wipe(&mut bytes);
        key
    }

    /// The key file's contents, byte for byte as tinc writes them
    /// (two 64-char lines, trailing newline). The string holds the secret.
    pub fn to_pem_string(&self) -> String {
        let mut bytes = [0u8; EXPANDED_LEN];
        bytes[..32].copy_from_slice(&self.scalar_bytes);
        bytes[32..64].copy_from_slice(&self.expanded.hash_prefix);
        bytes[64..].copy_from_slice(self.public.as_bytes());
        let text = pem::write_pem(PRIVATE_KEY_PEM_LABEL, &bytes);
        wipe(&mut bytes);
        text
    }

    /// Reads a private key file, refusing one that group or others may read
    /// or write, or that sits in a directory group or others may write without
    /// the sticky bit (the error tells how to fix it). Every error names the file.
    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        let io_err = |op: &'static str| {
            move |err: io::Error| KeyError::Io {
                path: path.to_path_buf(),
                op,
                err,
            }
        };
        let file = File::open(path).map_err(io_err("open"))?;
        let meta = file.metadata().map_err(io_err("stat"))?;
        super::perms::check_secret(path, &meta)?;
        let mut buf = Vec::with_capacity(meta.len().min(MAX_FILE_SIZE) as usize + 1);
        let read = file
            .take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read"));
        let result = match read {
            Err(e) => Err(e),
            Ok(_) if buf.len() as u64 > MAX_FILE_SIZE => Err(io_err("read")(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is larger than {MAX_FILE_SIZE} bytes"),
            ))),
            Ok(_) => Self::from_pem_bytes(&buf).map_err(|err| KeyError::InFile {
                path: path.to_path_buf(),
                err: Box::new(err),
            }),
        };
        wipe(&mut buf);
        result
    }

    /// Writes the key file atomically: a temporary file in the same
    /// directory, created with mode 0600, is written, fsynced and renamed
    /// over `path` (replacing any existing file); then the directory is
    /// fsynced. The final file has mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io_err = |p: &Path, op: &'static str| {
            let p = p.to_path_buf();
            move |err: io::Error| KeyError::Io { path: p, op, err }
        };
        let file_name = path.file_name().ok_or_else(|| {
            io_err(path, "save")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path does not name a file",
            ))
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let (tmp_path, mut file) = create_temp(dir, &file_name.to_string_lossy())
            .map_err(|(p, e)| io_err(&p, "create")(e))?;
        let mut text = self.to_pem_string().into_bytes();
        let written = file
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(&tmp_path, "chmod"))
            .and_then(|()| file.write_all(&text).map_err(io_err(&tmp_path, "write")))
            .and_then(|()| file.sync_all().map_err(io_err(&tmp_path, "fsync")));
        wipe(&mut text);
        drop(file);
        if let Err(e) = written.and_then(|()| {
            fs::rename(&tmp_path, path).map_err(io_err(path, "rename temporary file onto"))
        }) {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir, "fsync directory"))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// Signs `msg` (standard, deterministic Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, msg, &self.verifying).to_bytes()
    }
}

/// Creates `dir/.NAME.tmp-PID-N` exclusively with mode 0600.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), (PathBuf, io::Error)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempt = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err((tmp, e)),
        }
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // `expanded` zeroizes itself (ed25519-dalek's `zeroize` feature).
        wipe(&mut self.scalar_bytes);
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
