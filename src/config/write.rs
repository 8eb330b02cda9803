//! Writing configuration: atomic file replacement, appending lines to host files, and
//! initialising a new network directory.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::netdir::{NetDir, MESHD_CONF, TINC_CONF};
use super::parse::parse_config_text;
use super::ConfigError;
use meshd_core::name::NodeName;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh temporary file beside `path`, created exclusively with `mode`: a dotfile
/// (`.NAME.tmp.PID.N`), so that loaders that skip dotfiles (hosts/, conf.d/, invitations/) never
/// read a half-written one.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = parent_dir(path).join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    // The umask may have cleared bits of `mode`; set them explicitly.
    if let Err(e) = f.set_permissions(Permissions::from_mode(mode)) {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, f))
}

/// Replaces `path` atomically with `contents` and permission bits `mode`: writes a temporary
/// file (a dotfile) in the same directory, fsyncs it, renames it over `path`, fsyncs the
/// directory. On failure the temporary file is removed and `path` is untouched; after a crash
/// `path` holds either the old or the new contents, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, contents, mode, |f, c| f.write_all(c))
}

/// [`write_atomic`] with the step that writes the contents into the temporary file passed in
/// (the seam the crash tests use to fail or die half-way).
fn write_atomic_with(
    path: &Path,
    contents: &[u8],
    mode: u32,
    write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path, mode)?;
    let result = write(&mut f, contents)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            drop(f);
            std::fs::rename(&tmp, path)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    File::open(parent_dir(path))?.sync_all()
}

/// Creates `path` with `contents` and `mode` only if it does not exist yet, atomically: the
/// file appears complete or not at all (temporary dotfile, fsync, hard link to `path` — which
/// fails with `AlreadyExists` if something is there — then the temporary name is removed and
/// the directory fsynced).
pub fn write_new_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path, mode)?;
    let result = f
        .write_all(contents)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            drop(f);
            std::fs::hard_link(&tmp, path)
        });
    let _ = std::fs::remove_file(&tmp);
    result?;
    File::open(parent_dir(path))?.sync_all()
}

/// Appends `text` (complete lines) to the file at `path` atomically, creating it with
/// `new_file_mode` if missing and keeping the mode of an existing file. A newline is inserted
/// first if the existing file does not end with one.
pub fn append_lines(path: &Path, text: &str, new_file_mode: u32) -> io::Result<()> {
    let (mut contents, mode) = match std::fs::read(path) {
        Ok(c) => (c, std::fs::metadata(path)?.permissions().mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), new_file_mode),
        Err(e) => return Err(e),
    };
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    contents.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        contents.push(b'\n');
    }
    write_atomic(path, &contents, mode)
}

/// Appends `Variable = Value` to `hosts/NAME` the way tinc does for keys learned at run time:
/// preceded by a blank line and `# The following line was automatically added by meshd`.
pub fn append_to_host_file(
    netdir: &NetDir,
    name: &NodeName,
    variable: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let path = netdir.host_file(name);
    let line = format!("{variable} = {value}");
    check_single_line(&line, &path)?;
    let text = format!("\n# The following line was automatically added by meshd\n{line}\n");
    append_lines(&path, &text, 0o644).map_err(|e| ConfigError::io(&path, "cannot write", &e))
}

/// Checks that `line` is exactly one valid `Variable = Value` line.
fn check_single_line(line: &str, file: &Path) -> Result<(), ConfigError> {
    let parsed = parse_config_text(line, file)?;
    if line.contains(['\n', '\r']) || parsed.len() != 1 {
        return Err(ConfigError::file(
            file,
            format!(
                "'{}' is not a single `Variable = Value` line",
                line.escape_debug()
            ),
        ));
    }
    Ok(())
}

const TINC_UP_TEMPLATE: &str = "#!/bin/sh
# Run by meshd when the virtual interface has been created.
# Environment: INTERFACE, NAME, NETNAME, DEVICE.
ip link set \"$INTERFACE\" up
# ip addr add 10.1.1.x/24 dev \"$INTERFACE\"
";

/// Creates a network directory's root with mode 0700 (missing parents 0755, as `mkdir -p`
/// would). It holds the private key, the invitations and the scripts root runs, so only its
/// owner may enter it. An existing directory is kept as it is unless group or others can write
/// it (without the sticky bit): then it is refused, since they could swap the key or a script.
pub fn create_network_root(root: &Path) -> Result<(), ConfigError> {
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| ConfigError::io(parent, "cannot create directory", &e))?;
    }
    match DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => {
            // The umask may have cleared bits; 0700 is what we want exactly.
            std::fs::set_permissions(root, Permissions::from_mode(0o700))
                .map_err(|e| ConfigError::io(root, "cannot chmod", &e))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && root.is_dir() => {
            crate::keyfile::perms::check_dir_for_secrets(root)
                .map_err(|e| ConfigError::file(root, e.to_string()))
        }
        Err(e) => Err(ConfigError::io(root, "cannot create directory", &e)),
    }
}

/// Initialises a new network directory for node `name`: creates the root (0700, see
/// [`create_network_root`]) and `hosts/` (0755),
/// writes `tinc.conf` (`Name = NAME`, `Mode = switch`), `hosts/NAME` (`Port = N` if given, then
/// `public_key_line`, e.g. `Ed25519PublicKey = ...`) and an executable `tinc-up` template
/// (unless one exists). Refuses if `meshd.conf` or `tinc.conf` already exists, or if the own
/// host file exists. Key generation is the caller's job.
pub fn init_netdir(
    netdir: &NetDir,
    name: &NodeName,
    port: Option<u16>,
    public_key_line: &str,
) -> Result<(), ConfigError> {
    for conf in [MESHD_CONF, TINC_CONF] {
        let p = netdir.root.join(conf);
        if p.exists() {
            return Err(ConfigError::file(
                p,
                "already initialised: configuration file exists",
            ));
        }
    }
    let host_path = netdir.host_file(name);
    if !public_key_line.is_empty() {
        check_single_line(public_key_line, &host_path)?;
    }
    if host_path.exists() {
        return Err(ConfigError::file(
            host_path,
            "host file already exists; remove it or choose another name",
        ));
    }
    create_network_root(&netdir.root)?;
    let hosts = netdir.hosts_dir();
    DirBuilder::new()
        .mode(0o755)
        .create(&hosts)
        .or_else(|e| match e.kind() {
            io::ErrorKind::AlreadyExists if hosts.is_dir() => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| ConfigError::io(&hosts, "cannot create directory", &e))?;
    // tinc's address cache (see `addr_cache`).
    super::addr_cache::create_dir(netdir).map_err(|e| {
        ConfigError::io(
            super::addr_cache::dir(netdir),
            "cannot create directory",
            &e,
        )
    })?;

    let mut host = String::new();
    if let Some(p) = port {
        host.push_str(&format!("Port = {p}\n"));
    }
    if !public_key_line.is_empty() {
        host.push_str(public_key_line);
        host.push('\n');
    }
    write_atomic(&host_path, host.as_bytes(), 0o644)
        .map_err(|e| ConfigError::io(&host_path, "cannot write", &e))?;

    let up = netdir.script("tinc-up");
    if !up.exists() {
        write_atomic(&up, TINC_UP_TEMPLATE.as_bytes(), 0o755)
            .map_err(|e| ConfigError::io(&up, "cannot write", &e))?;
    }

    // Written last: its existence marks the directory as initialised.
    // tinc's name, so tincd and `tinc fsck` read the directory too; Mode = switch because it
    // is what meshd runs and tincd's default is router.
    let conf = netdir.root.join(TINC_CONF);
    let text = format!(
        "# Written by meshd init (tinc 1.1 syntax; meshd runs switch mode only).\n\
         # This node's own host variables (Port, Address, Subnet) live in hosts/{name}.\n\
         Name = {name}\n\
         Mode = switch\n"
    );
    write_atomic(&conf, text.as_bytes(), 0o644)
        .map_err(|e| ConfigError::io(&conf, "cannot write", &e))
}

#[cfg(test)]
mod tests {
    use super::super::{load_host_config, load_server_config};
    use super::*;

    fn nm(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_atomic_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), 0o600);
        write_atomic(&p, b"two", 0o755).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o755);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("nodir/x"), b"", 0o644).is_err());
    }

    /// A write that fails after `n` bytes: the old file is intact, no temporary file is left.
    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alpha");
        write_atomic(&p, b"Port = 655\nEd25519PublicKey = old\n", 0o644).unwrap();
        let new = b"Port = 655\nEd25519PublicKey = new-key-text\n";
        for n in [0, 1, 10, new.len() - 1] {
            let e = write_atomic_with(&p, new, 0o644, |f, c| {
                f.write_all(&c[..n])?;
                Err(io::Error::other("disk full (injected)"))
            })
            .unwrap_err();
            assert!(e.to_string().contains("injected"), "{e}");
            assert_eq!(
                std::fs::read(&p).unwrap(),
                b"Port = 655\nEd25519PublicKey = old\n",
                "after {n} bytes"
            );
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["alpha"], "after {n} bytes");
        }
    }

    /// A process that dies half-way through a write (simulated by a panic inside the write
    /// step, which skips the clean-up as a SIGKILL would) leaves the old host file intact and a
    /// temporary dotfile that the host loader does not read.
    #[test]
    fn crash_mid_write_leaves_old_file_and_a_dotfile_the_loader_skips() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path());
        std::fs::create_dir(nd.hosts_dir()).unwrap();
        let p = nd.host_file(&nm("beta"));
        write_atomic(&p, b"Port = 1\n", 0o644).unwrap();
        let crashed = std::panic::catch_unwind(|| {
            write_atomic_with(&p, b"Port = 2\nSubnet = 10.9.9.9\n", 0o644, |f, c| {
                f.write_all(&c[..12]).unwrap();
                panic!("killed between write and rename (simulated)");
            })
        });
        assert!(crashed.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "Port = 1\n");
        let leftovers: Vec<String> = std::fs::read_dir(nd.hosts_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "beta")
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert!(leftovers[0].starts_with(".beta.tmp."), "{leftovers:?}");
        let (hosts, errors) = super::super::load_all_hosts(&nd);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["beta"]);
        assert_eq!(hosts[0].port, 1);
        // The next write succeeds beside the leftover.
        write_atomic(&p, b"Port = 3\n", 0o644).unwrap();
        assert_eq!(load_host_config(&nd, &nm("beta")).unwrap().port, 3);
    }

    #[test]
    fn write_new_atomic_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gamma");
        write_new_atomic(&p, b"Ed25519PublicKey = a\n", 0o600).unwrap();
        assert_eq!(mode_of(&p), 0o600);
        let e = write_new_atomic(&p, b"Ed25519PublicKey = b\n", 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"Ed25519PublicKey = a\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn network_root_is_0700_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("etc/meshd/net");
        create_network_root(&root).unwrap();
        assert_eq!(mode_of(&root), 0o700);
        assert_eq!(mode_of(root.parent().unwrap()), 0o755);
        // An existing directory is kept as it is (tinc users may have made it 0755)...
        std::fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        create_network_root(&root).unwrap();
        assert_eq!(mode_of(&root), 0o755);
        // ...unless group or others could swap the key in it.
        std::fs::set_permissions(&root, Permissions::from_mode(0o777)).unwrap();
        let e = create_network_root(&root).unwrap_err();
        assert_eq!(e.file, root);
        assert!(e.to_string().contains("0777"), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("chmod go-w {}", root.display())),
            "{e}"
        );
        let nd = NetDir::new(&root);
        assert!(init_netdir(&nd, &nm("alpha"), None, "").is_err());
        assert!(!nd.root.join("tinc.conf").exists());
    }

    #[test]
    fn append_keeps_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path());
        std::fs::create_dir(nd.hosts_dir()).unwrap();
        let p = nd.host_file(&nm("beta"));
        write_atomic(&p, b"Port = 1", 0o640).unwrap();
        append_to_host_file(&nd, &nm("beta"), "Ed25519PublicKey", "xyz").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "Port = 1\n\n# The following line was automatically added by meshd\nEd25519PublicKey = xyz\n"
        );
        assert_eq!(mode_of(&p), 0o640);
        let h = load_host_config(&nd, &nm("beta")).unwrap();
        assert_eq!(h.ed25519_public_key.as_deref(), Some("xyz"));
        assert!(append_to_host_file(&nd, &nm("beta"), "Port", "1\nSubnet = x").is_err());
        append_to_host_file(&nd, &nm("gamma"), "Address", "a.example").unwrap();
        assert_eq!(mode_of(&nd.host_file(&nm("gamma"))), 0o644);
    }

    #[test]
    fn init_creates_and_refuses_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path().join("net"));
        init_netdir(&nd, &nm("alpha"), Some(1655), "Ed25519PublicKey = abc").unwrap();
        assert_eq!(mode_of(&nd.root), 0o700);
        assert_eq!(mode_of(&nd.hosts_dir()), 0o755);
        assert_eq!(mode_of(&nd.host_file(&nm("alpha"))), 0o644);
        assert_eq!(mode_of(&nd.root.join("tinc.conf")), 0o644);
        assert!(!nd.root.join("meshd.conf").exists());
        let up = nd.script("tinc-up");
        assert_eq!(mode_of(&up) & 0o111, 0o111);
        let up_text = std::fs::read_to_string(&up).unwrap();
        assert!(up_text.contains("ip link set \"$INTERFACE\" up"));
        assert!(up_text.contains("# ip addr add 10.1.1.x/24 dev \"$INTERFACE\""));
        let cfg = load_server_config(&nd).unwrap();
        assert_eq!(cfg.name, "alpha");
        assert_eq!(cfg.port, 1655);
        assert_eq!(cfg.ed25519_public_key.as_deref(), Some("abc"));
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

        let e = init_netdir(&nd, &nm("alpha"), None, "Ed25519PublicKey = abc").unwrap_err();
        assert!(e.message.contains("already initialised"), "{e}");
        assert_eq!(e.file, nd.root.join("tinc.conf"));
    }

    #[test]
    fn init_refuses_tinc_conf_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let nd = NetDir::new(dir.path());
        assert!(init_netdir(&nd, &nm("a"), None, "Ed25519PublicKey = a\nPort = 1").is_err());
        std::fs::write(dir.path().join("tinc.conf"), "Name = a\n").unwrap();
        let e = init_netdir(&nd, &nm("a"), None, "").unwrap_err();
        assert!(e.message.contains("already initialised"));
    }
}
