//! Configuration text: the line parser, the host-file typing on its result,
//! and every value parser on every line. Values that parse must print back to
//! text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::config::{
    format_duration, parse_bool, parse_config_text, parse_duration, parse_host_config, parse_port,
    AddressFamily, BindAddress, HostAddress, NodeName, Subnet,
};
use std::path::Path;
use std::str::FromStr;

fn round_trip<T>(value: &str)
where
    T: FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = value.parse::<T>() {
        let text = v.to_string();
        match text.parse::<T>() {
            Ok(again) => assert_eq!(again, v, "{value:?} -> {text:?}"),
            Err(_) => panic!("{value:?} parsed to {v:?}, whose text {text:?} does not parse"),
        }
    }
}

fn values(value: &str) {
    round_trip::<Subnet>(value);
    round_trip::<HostAddress>(value);
    round_trip::<BindAddress>(value);
    round_trip::<AddressFamily>(value);
    if let Ok(d) = parse_duration(value) {
        let text = format_duration(d);
        assert_eq!(parse_duration(&text), Ok(d), "{value:?} -> {text:?}");
    }
    let _ = parse_bool(value);
    if let Ok(p) = parse_port(value) {
        assert_eq!(parse_port(&p.to_string()), Ok(p));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("fuzz.conf");
    match parse_config_text(&text, file) {
        Ok(lines) => {
            for line in &lines {
                assert!(!line.variable.is_empty());
                assert!(!line.value.is_empty());
                let _ = line.location();
                values(&line.value);
            }
            let fuzz = NodeName::new("fuzz").expect("a valid node name");
            match parse_host_config(&fuzz, lines.clone()) {
                Ok(host) => {
                    assert_eq!(host.raw, lines);
                    for subnet in &host.subnets {
                        let _ = subnet.contains_ip(std::net::Ipv4Addr::new(192, 0, 2, 1).into());
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            // An invalid node name is refused, never a panic.
            assert!(NodeName::new("no such/name").is_err());
        }
        Err(e) => {
            assert_eq!(e.file, file);
            let _ = e.to_string();
        }
    }
    // Each raw line as a bare value, too.
    for line in text.lines().take(64) {
        values(line);
    }
});
