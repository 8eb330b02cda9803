//! Invitation URLs: `invite::InvitationUrl::parse` on any text. A URL that parses prints
//! back to text that parses to the same URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::invite::InvitationUrl;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match InvitationUrl::parse(&text) {
        Ok(url) => {
            let printed = url.to_string();
            let again = InvitationUrl::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} parsed, its text {printed:?} does not: {e}"));
            assert_eq!(again, url, "{text:?} -> {printed:?}");
            assert!(url.port_or_default() != 0);
        }
        Err(e) => assert!(e.to_string().starts_with("Invalid invitation URL")),
    }
});
