//! `hosts.example/` is a complete, valid network directory set: every node's
//! configuration loads without a warning once keys exist, and the servers
//! declare the shared VIP.

use meshd::config::NetDir;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_example_node_loads_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("hosts.example");
    let tmp = tempfile::tempdir().unwrap();
    for n in 1..=5 {
        let dir = tmp.path().join(format!("node_{n}"));
        copy_dir(&root.join(format!("node_{n}")), &dir);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshd"))
            .arg("-c")
            .arg(&dir)
            .arg("generate-ed25519-keys")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Exchange host files as the README says: the hub gets all, the others the hub's.
    for n in 2..=5 {
        let name = format!("node_{n}");
        std::fs::copy(
            tmp.path().join(&name).join("hosts").join(&name),
            tmp.path().join("node_1/hosts").join(&name),
        )
        .unwrap();
        std::fs::copy(
            tmp.path().join("node_1/hosts/node_1"),
            tmp.path().join(&name).join("hosts/node_1"),
        )
        .unwrap();
    }
    for n in 1..=5 {
        let netdir = NetDir::new(tmp.path().join(format!("node_{n}")));
        let setup = meshd::driver::setup::load(&netdir).unwrap();
        assert!(setup.warnings.is_empty(), "node_{n}: {:?}", setup.warnings);
        assert_eq!(setup.interface, "mesh0");
        let serves_vip = (2..=4).contains(&n);
        assert_eq!(setup.node.vips.len(), usize::from(serves_vip), "node_{n}");
        if serves_vip {
            assert_eq!(
                setup.node.vips[0].virtual_mac.to_string(),
                "02:6d:0a:01:01:0a"
            );
        }
        for script in ["tinc-up", "tinc-down", "host-up", "host-down"] {
            let meta = std::fs::metadata(netdir.root.join(script)).unwrap();
            assert!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0);
        }
    }
}
