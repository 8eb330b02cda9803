//! Issue 21: the Debian package. `scripts/package --no-build` packages the binary these tests
//! run; the package must hold the binary, the systemd units (pointing at that binary), the man
//! page, the completions and the maintainer scripts that make /etc/meshd. (.ci/run installs it
//! with apt-get, runs `meshd --version` and `systemd-analyze verify` on the installed unit, and
//! removes it.)

mod cli_support;

use cli_support::*;
use std::path::Path;
use std::process::Command;

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("run dpkg-deb");
    assert!(out.status.success(), "dpkg-deb {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_holds_binary_units_man_page_and_completions() {
    let have = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "cargo-deb is missing: run scripts/package once (it installs it), or cargo install cargo-deb --locked"
    );
    let bin = Path::new(meshd_bin());
    let target = bin.parent().and_then(Path::parent).expect("target dir");
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/package"));
    cmd.args(["--no-build", "--output"])
        .arg(tmp.path())
        .env("CARGO_TARGET_DIR", target);
    let out = run_cmd(cmd);
    assert_ok(&out);
    let debs: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(
        debs.len(),
        1,
        "one .deb in {}: {debs:?}",
        tmp.path().display()
    );
    let deb = &debs[0];
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("meshd_{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let files = dpkg_deb(&["-c"], deb);
    for path in [
        "./usr/sbin/meshd",
        "./lib/systemd/system/meshd@.service",
        "./lib/systemd/system/meshd.target",
        "./usr/share/man/man8/meshd.8.gz",
        "./usr/share/bash-completion/completions/meshd",
        "./usr/share/zsh/vendor-completions/_meshd",
        "./usr/share/fish/vendor_completions.d/meshd.fish",
    ] {
        assert!(
            files.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} is not in the package:\n{files}"
        );
    }
    assert!(
        files
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(" ./usr/sbin/meshd")),
        "/usr/sbin/meshd is not executable:\n{files}"
    );

    let control = dpkg_deb(&["-f"], deb);
    assert!(control.contains("Package: meshd\n"), "{control}");
    assert!(control.contains("Section: net\n"), "{control}");
    assert!(
        control.contains("iproute2"),
        "Depends lacks iproute2: {control}"
    );
    let synopsis = control
        .lines()
        .find_map(|l| l.strip_prefix("Description: "))
        .expect("a Description");
    assert!(synopsis.len() < 80, "synopsis too long: {synopsis}");

    // The units and the maintainer scripts as installed.
    let x = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-R")
        .arg(deb)
        .arg(x.path())
        .output()
        .expect("dpkg-deb -R");
    assert!(out.status.success(), "{}", show(&out));
    let unit = read(&x.path().join("lib/systemd/system/meshd@.service"));
    assert!(
        unit.contains("ExecStart=/usr/sbin/meshd -n %i start -D"),
        "the unit does not run the packaged binary:\n{unit}"
    );
    let postinst = read(&x.path().join("DEBIAN/postinst"));
    assert!(postinst.contains("/etc/meshd"), "{postinst}");
    assert_eq!(mode_of(&x.path().join("DEBIAN/postinst")) & 0o111, 0o111);
    // The packaged binary is the one built, stripped.
    let packaged = x.path().join("usr/sbin/meshd");
    let out = Command::new(&packaged).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("meshd {}\n", env!("CARGO_PKG_VERSION"))
    );
    // The man page is meshd's own, gzipped.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}'",
            x.path().join("usr/share/man/man8/meshd.8.gz").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH meshd 8"));
}
