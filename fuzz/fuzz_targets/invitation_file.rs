//! Invitation files as a joiner receives them: `invite::contents::parse_invitation` on any
//! text. What it accepts must stay within the documented lists, the files it would write
//! must parse as configuration, and the generated tinc-up must hold only `ip` commands
//! built from parsed values (nothing from the inviter reaches the shell verbatim).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::config::{parse_config_text, NodeName};
use meshd::invite::contents::{
    parse_invitation, ACCEPTED_HOST_VARIABLES, ACCEPTED_SERVER_VARIABLES,
};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(plan) = parse_invitation(&text) else {
        return;
    };
    assert!(NodeName::new(plan.name.as_str()).is_ok());
    for (v, _) in &plan.server_lines {
        assert!(ACCEPTED_SERVER_VARIABLES.contains(&v.as_str()), "{v}");
    }
    for (v, _) in &plan.host_lines {
        assert!(ACCEPTED_HOST_VARIABLES.contains(&v.as_str()), "{v}");
    }
    for h in &plan.hosts {
        assert!(NodeName::new(h.name.as_str()).is_ok() && h.name != plan.name);
    }
    let conf = parse_config_text(&plan.tinc_conf(), Path::new("tinc.conf"))
        .expect("the written tinc.conf parses");
    let names: Vec<&str> = conf
        .iter()
        .filter(|l| l.is("Name"))
        .map(|l| l.value.as_str())
        .collect();
    assert_eq!(names, vec![plan.name.as_str()], "exactly one Name line");
    parse_config_text(&plan.own_host_file(Some(655), "key"), Path::new("host"))
        .expect("the written host file parses");
    for cmd in &plan.tinc_up_commands {
        assert!(cmd.starts_with("ip "), "{cmd}");
        let without_interface = cmd.replace("\"$INTERFACE\"", "");
        assert!(
            without_interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ./:".contains(c)),
            "{cmd}"
        );
    }
});
