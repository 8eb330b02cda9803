//! The control socket's decoders: each input line as a client's `Greeting` and
//! `Request` (what the daemon reads from any local process that can open the
//! socket), as a daemon's `Response` (what the CLI reads), `json_leaves` on
//! any JSON value (`dump drops`, metrics), and the whole input as a pidfile.
//!
//! Checks beyond "no panic": a greeting or request that decodes encodes back
//! to JSON that decodes to the same value; a decoded response re-encodes; a
//! pidfile that parses writes back (in `PidFile::write`'s format) to text that
//! parses to the same pidfile.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::control::pidfile::PidFile;
use meshd::control::{json_leaves, Greeting, Request, Response};

fn round_trip<T>(line: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = serde_json::from_str::<T>(line) {
        let text = serde_json::to_string(&v).expect("encode a decoded value");
        match serde_json::from_str::<T>(&text) {
            Ok(again) => assert_eq!(again, v, "{line:?} -> {text:?}"),
            Err(e) => panic!("{line:?} decoded to {v:?}, whose JSON {text:?} does not: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(16) {
        round_trip::<Greeting>(line);
        round_trip::<Request>(line);
        if let Ok(resp) = serde_json::from_str::<Response>(line) {
            let _ = format!("{resp:?}");
            assert!(serde_json::to_string(&resp).is_ok());
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            let mut leaves = Vec::new();
            json_leaves("", ".", &value, &mut leaves);
            assert!(leaves.iter().all(|(_, v)| !v.is_object()));
        }
    }
    if let Some(p) = PidFile::parse(&text) {
        let line = format!("{} {} {} port {}\n", p.pid, p.cookie, p.host, p.port);
        assert_eq!(PidFile::parse(&line).as_ref(), Some(&p), "{line:?}");
    }
});
