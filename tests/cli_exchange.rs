//! `export`, `export-all`, `import`, `exchange`: host files handed between meshd and tinc
//! directories in tinc 1.1's format (../shared/tinc11-observed/cli/29.txt, 30.txt).

mod cli_support;

use cli_support::*;
use std::path::Path;
use std::process::Output;

const SEPARATOR: &str = "#---------------------------------------------------------------#";

/// `meshd -c DIR ARGS...` with `input` on stdin.
fn meshd_stdin_in(dir: &Path, args: &[&str], input: &str) -> Output {
    let dir = dir.to_str().expect("UTF-8 test path");
    let mut all = vec!["-c", dir];
    all.extend_from_slice(args);
    meshd_stdin(&all, input)
}

/// What tinc 1.1's `export-all` printed (cli/30.txt), the RSA block shortened.
const TINC_EXPORT_ALL: &str = "Name = beta
Ed25519PublicKey = 2ghD1T5f00onWL2OqU9+xl3GDxX11jocGUMMhwzVQRG

#---------------------------------------------------------------#
Name = eta
Ed25519PublicKey = nuUwO9qkj2ym0iXgubTHqac40P9xvZVRTwHc/9PVQ6O

#---------------------------------------------------------------#
Name = alpha
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA2r6AnL4BBlBNdbMur6ipz0lLYXZILP3F6ANoeN5ir3a5ZYNR/Tvb
mWQNHbhfyVHzha2AiXj/wDKZuAEGgMYdMwIDAQAB
-----END RSA PUBLIC KEY-----
Ed25519PublicKey = FUn5hL4ooW0dBw77BiNwKIdPzEf/n32SRga2yMLwk6I
Address = 127.0.0.1
Port = 16551
Subnet = 02:00:00:00:00:0a
Subnet = 10.9.0.1/32
";

#[test]
fn export_prints_own_host_file_with_name_first() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("alpha");
    init_node(&dir, "alpha", 16551);
    // A Name line inside a host file is not exported (the header says whose it is).
    append(
        &dir.join("hosts/alpha"),
        "Name = alpha\nSubnet = 10.9.0.1/32\n",
    );
    let o = meshd(&dir, &["export"]);
    assert_ok(&o);
    let out = stdout(&o);
    let host = read(&dir.join("hosts/alpha"));
    let expected = format!("Name = alpha\n{}", host.replace("Name = alpha\n", ""));
    assert_eq!(out, expected);
    assert_eq!(out.matches("Name = ").count(), 1);
}

#[test]
fn export_all_separates_files_as_tinc() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("alpha");
    init_node(&dir, "alpha", 16551);
    std::fs::write(dir.join("hosts/beta"), "Ed25519PublicKey = x\n").unwrap();
    std::fs::write(dir.join("hosts/beta-up"), "#!/bin/sh\n").unwrap();
    let o = meshd(&dir, &["export-all"]);
    assert_ok(&o);
    let out = stdout(&o);
    let parts: Vec<&str> = out.split(&format!("\n{SEPARATOR}\n")).collect();
    assert_eq!(parts.len(), 2, "{out}");
    assert!(parts[0].starts_with("Name = alpha\n"), "{out}");
    assert_eq!(parts[1], "Name = beta\nEd25519PublicKey = x\n");
}

#[test]
fn import_reads_tincs_export_all_and_skips_existing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("gamma");
    init_node(&dir, "gamma", 16553);
    std::fs::write(dir.join("hosts/eta"), "Address = 192.0.2.9\n").unwrap();
    let o = meshd_stdin_in(&dir, &["import"], TINC_EXPORT_ALL);
    assert_ok(&o);
    assert_eq!(
        stderr(&o),
        "Host configuration file eta already exists, skipping.\nImported 2 host configuration files.\n"
    );
    assert_eq!(
        read(&dir.join("hosts/beta")),
        "Ed25519PublicKey = 2ghD1T5f00onWL2OqU9+xl3GDxX11jocGUMMhwzVQRG\n"
    );
    let alpha = read(&dir.join("hosts/alpha"));
    assert!(
        alpha.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"),
        "{alpha}"
    );
    assert!(alpha.ends_with("Subnet = 10.9.0.1/32\n"), "{alpha}");
    assert_eq!(read(&dir.join("hosts/eta")), "Address = 192.0.2.9\n");
    assert_eq!(mode_of(&dir.join("hosts/beta")), 0o644);
    // The same again: nothing new, rc 1.
    let o = meshd_stdin_in(&dir, &["import"], TINC_EXPORT_ALL);
    assert_exit1(&o);
    assert!(
        stderr(&o).ends_with("No host configuration files imported.\n"),
        "{}",
        show(&o)
    );
    // --force replaces existing files.
    let o = meshd_stdin_in(&dir, &["--force", "import"], TINC_EXPORT_ALL);
    assert_ok(&o);
    assert_eq!(stderr(&o), "Imported 3 host configuration files.\n");
    assert!(read(&dir.join("hosts/eta")).starts_with("Ed25519PublicKey = nuUw"));
}

#[test]
fn import_refuses_bad_names_and_reports_junk() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("gamma");
    init_node(&dir, "gamma", 16553);
    let o = meshd_stdin_in(&dir, &["import"], "Name = ../etc\nPort = 1\n");
    assert_exit1(&o);
    assert_eq!(stderr(&o), "Invalid Name in input!\n");
    let o = meshd_stdin_in(&dir, &["import"], "hello\nName = delta\nPort = 1\n");
    assert_ok(&o);
    assert_eq!(
        stderr(&o),
        "Junk at the beginning of the input, ignoring.\nImported 1 host configuration files.\n"
    );
    assert_eq!(read(&dir.join("hosts/delta")), "Port = 1\n");
    // A host file meshd could not load is not written.
    let o = meshd_stdin_in(&dir, &["import"], "Name = zeta\nPort = many\n");
    assert_exit1(&o);
    assert!(stderr(&o).contains("Not importing zeta"), "{}", show(&o));
    assert!(!dir.join("hosts/zeta").exists());
}

#[test]
fn export_import_roundtrip_and_exchange() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("alpha");
    let b = t.path().join("beta");
    init_node(&a, "alpha", 16551);
    init_node(&b, "beta", 16552);
    let exported = stdout(&meshd(&a, &["export"]));
    let o = meshd_stdin_in(&b, &["import"], &exported);
    assert_ok(&o);
    assert_eq!(read(&b.join("hosts/alpha")), read(&a.join("hosts/alpha")));
    // exchange: b prints its own host file, and imports what comes in.
    let from_c = "Name = gamma\nAddress = 192.0.2.3\n";
    let o = meshd_stdin_in(&b, &["exchange"], from_c);
    assert_ok(&o);
    assert_eq!(
        stdout(&o),
        format!("Name = beta\n{}", read(&b.join("hosts/beta")))
    );
    assert_eq!(read(&b.join("hosts/gamma")), "Address = 192.0.2.3\n");
    let o = meshd_stdin_in(&b, &["exchange-all"], "");
    assert_exit1(&o);
    assert_eq!(stdout(&o).matches("Name = ").count(), 3);
}
