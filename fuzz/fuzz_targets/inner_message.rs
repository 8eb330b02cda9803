//! Plaintext messages of data packets and node records: decoders must never
//! panic, and whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::wire::{Message, NodeRecord};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.to_vec();
        assert_eq!(bytes, data, "Message did not round-trip: {msg:?}");
        assert_eq!(Message::parse(&bytes).as_ref(), Ok(&msg));
    }

    if let Ok(record) = NodeRecord::parse(data) {
        let mut bytes = Vec::new();
        record.write(&mut bytes);
        assert_eq!(bytes, data, "NodeRecord did not round-trip: {record:?}");
        assert_eq!(record.encoded_len(), data.len());
        assert_eq!(NodeRecord::parse(&bytes).as_ref(), Ok(&record));
        let signed = record.signed_bytes();
        assert!(signed.ends_with(&data[..data.len() - 64]));
        // Only its signature is checked against the key inside it.
        let key = meshd::keys::PublicKey::from_bytes(record.public_key);
        let _ = key.verify(&signed, &record.signature);
    }
});
