//! Permission checks for secret files (private keys, invitations) (part of the keyfile module):
//! a secret that group or others may read or write is refused, and so is one in a directory
//! that group or others may write without the sticky bit (they could swap the file).

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::keys::KeyError;

/// Mode bits that must be clear on a secret file: group and others, any access.
const SECRET_FILE_FORBIDDEN: u32 = 0o077;
/// Mode bits that must be clear on a secret's directory (unless sticky): group/others write.
const SECRET_DIR_FORBIDDEN: u32 = 0o022;
/// The sticky bit: others may create entries but not rename or remove ours.
const STICKY: u32 = 0o1000;

/// Refuses a secret file whose mode lets group or others read, write or execute it.
/// `meta` is the open file's metadata (so the check applies to what is actually read).
pub fn check_secret_file(path: &Path, meta: &Metadata) -> Result<(), KeyError> {
    if !meta.is_file() {
        return Err(KeyError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & SECRET_FILE_FORBIDDEN != 0 {
        return Err(KeyError::PermissionsTooOpen {
            path: path.to_path_buf(),
            mode,
            access: if mode & 0o044 != 0 {
                "read"
            } else if mode & 0o022 != 0 {
                "write"
            } else {
                "execute"
            },
        });
    }
    Ok(())
}

/// Refuses a secret file `path` whose directory group or others can write (without the sticky
/// bit): anyone who can write the directory can replace the file with their own.
pub fn check_secret_dir(path: &Path) -> Result<(), KeyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir).map_err(|err| KeyError::Io {
        path: dir.to_path_buf(),
        op: "stat",
        err,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & SECRET_DIR_FORBIDDEN != 0 && mode & STICKY == 0 {
        return Err(KeyError::DirectoryTooOpen {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Both checks for the secret at `path`, whose open file has metadata `meta`.
pub fn check_secret(path: &Path, meta: &Metadata) -> Result<(), KeyError> {
    check_secret_file(path, meta)?;
    check_secret_dir(path)
}

/// Refuses a directory that is to hold secrets if group or others can write it (no sticky
/// bit); the error says how to fix it (the caller adds the directory's name).
pub fn check_dir_for_secrets(dir: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & SECRET_DIR_FORBIDDEN != 0 && mode & STICKY == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "mode {mode:04o} lets group/others replace the secret keys it will hold; run chmod go-w {}",
                dir.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn secret_file_modes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        fs::write(&p, "x").unwrap();
        for ok in [0o600, 0o400, 0o700, 0o200] {
            chmod(&p, ok);
            check_secret(&p, &fs::metadata(&p).unwrap()).unwrap();
        }
        for (bad, access) in [
            (0o640, "read"),
            (0o604, "read"),
            (0o620, "write"),
            (0o602, "write"),
            (0o610, "execute"),
        ] {
            chmod(&p, bad);
            let e = check_secret(&p, &fs::metadata(&p).unwrap()).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&p.display().to_string()), "{text}");
            assert!(text.contains(&format!("{bad:04o}")), "{text}");
            assert!(text.contains(access), "{text}");
            assert!(
                text.contains(&format!("chmod 600 {}", p.display())),
                "{text}"
            );
        }
        let e = check_secret_file(dir.path(), &fs::metadata(dir.path()).unwrap()).unwrap_err();
        assert!(matches!(e, KeyError::NotRegularFile { .. }), "{e}");
    }

    #[test]
    fn secret_dir_modes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("net");
        fs::create_dir(&sub).unwrap();
        let p = sub.join("secret");
        fs::write(&p, "x").unwrap();
        chmod(&p, 0o600);
        for ok in [0o700, 0o755, 0o1777, 0o1770] {
            chmod(&sub, ok);
            check_secret_dir(&p).unwrap();
            check_dir_for_secrets(&sub).unwrap();
        }
        for bad in [0o777, 0o775, 0o757, 0o730] {
            chmod(&sub, bad);
            let text = check_secret_dir(&p).unwrap_err().to_string();
            assert!(text.contains(&p.display().to_string()), "{text}");
            assert!(text.contains(&format!("{bad:04o}")), "{text}");
            assert!(
                text.contains(&format!("chmod go-w {}", sub.display())),
                "{text}"
            );
            let text = check_dir_for_secrets(&sub).unwrap_err().to_string();
            assert!(
                text.contains(&format!("chmod go-w {}", sub.display())),
                "{text}"
            );
        }
        chmod(&sub, 0o700);
    }
}
