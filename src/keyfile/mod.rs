//! Reading and writing the node's private key file (`ed25519_key.priv`) and
//! the permission checks every secret file passes ([`perms`]); the key's
//! format is `meshd_core::keys`.

pub mod perms;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::keys::{wipe, KeyError, PrivateKey};

/// Key files larger than this are rejected without reading them whole.
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// Reads a private key file, refusing one that group or others may read
/// or write, or that sits in a directory group or others may write without
/// the sticky bit (the error tells how to fix it). Every error names the file.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let io_err = |op: &'static str| {
        move |err: io::Error| KeyError::Io {
            path: path.to_path_buf(),
            op,
            err,
        }
    };
    let file = File::open(path).map_err(io_err("open"))?;
    let meta = file.metadata().map_err(io_err("stat"))?;
    perms::check_secret(path, &meta)?;
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
        Ok(_) => PrivateKey::from_pem_bytes(&buf).map_err(|err| KeyError::InFile {
            path: path.to_path_buf(),
            err: Box::new(err),
        }),
    };
    wipe(&mut buf);
    result
}

/// Writes the key file atomically with mode 0600 (a temporary 0600 dotfile
/// beside it, fsynced and renamed over `path`, then the directory fsynced:
/// [`crate::config::write_atomic`]), replacing any existing file.
pub fn save_private_key(key: &PrivateKey, path: &Path) -> Result<(), KeyError> {
    let mut text = key.to_pem_string().into_bytes();
    let written = crate::config::write_atomic(path, &text, 0o600);
    wipe(&mut text);
    written.map_err(|err| KeyError::Io {
        path: path.to_path_buf(),
        op: "write",
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const ALPHA_PRIV: &str = include_str!("../../proto/vectors/tinc11/alpha.ed25519_key.priv");
    const ALPHA_HOST: &str = include_str!("../../proto/vectors/tinc11/alpha.host");

    fn alpha_host_key() -> PublicKey {
        let value = ALPHA_HOST
            .trim()
            .strip_prefix("Ed25519PublicKey = ")
            .unwrap();
        PublicKey::from_tinc_base64(value).unwrap()
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x6d65_7368)
    }

    fn rng_other() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn load_rejects_open_permissions_and_accepts_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ed25519_key.priv");
        fs::write(&path, ALPHA_PRIV).unwrap();

        set_mode(&path, 0o644);
        let err = load_private_key(&path).unwrap_err();
        assert!(matches!(
            err,
            KeyError::PermissionsTooOpen { mode: 0o644, .. }
        ));
        let p = path.display();
        assert_eq!(
            err.to_string(),
            format!(
                "{p}: permissions 0644 are too open (group/world can read it); run chmod 600 {p}"
            )
        );
        for mode in [0o640, 0o604, 0o620, 0o602, 0o666] {
            set_mode(&path, mode);
            assert!(
                matches!(
                    load_private_key(&path),
                    Err(KeyError::PermissionsTooOpen { .. })
                ),
                "{mode:o}"
            );
        }
        set_mode(&path, 0o620);
        assert!(load_private_key(&path)
            .unwrap_err()
            .to_string()
            .contains("can write it"));

        for mode in [0o600, 0o400, 0o700] {
            set_mode(&path, mode);
            let key = load_private_key(&path).unwrap();
            assert_eq!(key.public(), alpha_host_key());
        }
    }

    #[test]
    fn load_refuses_a_key_in_a_directory_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        fs::create_dir(&net).unwrap();
        let path = net.join("ed25519_key.priv");
        fs::write(&path, ALPHA_PRIV).unwrap();
        set_mode(&path, 0o600);
        for mode in [0o777, 0o770, 0o707] {
            set_mode(&net, mode);
            let err = load_private_key(&path).unwrap_err();
            assert!(
                matches!(err, KeyError::DirectoryTooOpen { mode: m, .. } if m == mode),
                "{err}"
            );
            let text = err.to_string();
            assert!(text.starts_with(&path.display().to_string()), "{text}");
            assert!(
                text.contains(&format!("chmod go-w {}", net.display())),
                "{text}"
            );
        }
        // The sticky bit keeps others from replacing our file, as in /tmp.
        for mode in [0o1777, 0o755, 0o700] {
            set_mode(&net, mode);
            assert_eq!(load_private_key(&path).unwrap().public(), alpha_host_key());
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ed25519_key.priv");
        let name = path.display().to_string();

        let err = load_private_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Io { op: "open", .. }));
        assert!(err.to_string().starts_with(&name), "{err}");

        fs::write(&path, "not a key\n").unwrap();
        set_mode(&path, 0o600);
        let err = load_private_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::InFile { .. }));
        assert!(err.to_string().starts_with(&name), "{err}");
        assert!(
            err.to_string().contains("BEGIN ED25519 PRIVATE KEY"),
            "{err}"
        );

        let err = load_private_key(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&dir.path().display().to_string()),
            "{err}"
        );

        fs::write(&path, vec![b'A'; 100_000]).unwrap();
        let err = load_private_key(&path).unwrap_err();
        assert!(err.to_string().starts_with(&name), "{err}");
    }

    #[test]
    fn generated_key_round_trips_through_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ed25519_key.priv");
        let key = PrivateKey::generate(&mut rng());
        save_private_key(&key, &path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);

        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, key.to_pem_string());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "-----BEGIN ED25519 PRIVATE KEY-----");
        assert_eq!((lines[1].len(), lines[2].len()), (64, 64));
        assert_eq!(lines[3], "-----END ED25519 PRIVATE KEY-----");

        let loaded = load_private_key(&path).unwrap();
        assert_eq!(loaded.public(), key.public());
        let sig = loaded.sign(b"msg");
        assert_eq!(sig, key.sign(b"msg"));
        assert!(key.public().verify(b"msg", &sig));
        assert!(!key.public().verify(b"msh", &sig));

        // Overwriting works, keeps 0600, and leaves no temporary files behind.
        set_mode(&path, 0o644);
        let key2 = PrivateKey::generate(&mut rng_other());
        save_private_key(&key2, &path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(load_private_key(&path).unwrap().public(), key2.public());
        let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);

        // Saving into a missing directory fails and names the path.
        let err = save_private_key(&key, &dir.path().join("missing/ed25519_key.priv")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
