//! Plaintext messages of data packets, node records and record extensions:
//! decoders must never panic, and whatever decodes must re-encode faithfully.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::wire::extension::{decode_extension, encode_extension};
use meshd::wire::message::MAX_ITEMS;
use meshd::wire::{Message, NodeRecord};

/// Items in a gossip or digest message.
fn items(msg: &Message<'_>) -> usize {
    match msg {
        Message::Gossip(records) => records.len(),
        Message::Digest(digest) => digest.entries.len(),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        // `parse` accepts up to 65535 items but `emit` writes at most
        // MAX_ITEMS (a digest that large needs a 73 KB plaintext, more than a
        // UDP datagram holds), so only smaller messages must round-trip.
        if items(&msg) <= MAX_ITEMS {
            let bytes = msg.to_vec();
            assert!(
                bytes == data,
                "Message did not round-trip ({} bytes in, {} out)",
                data.len(),
                bytes.len()
            );
            assert!(Message::parse(&bytes).as_ref() == Ok(&msg));
        }
    }

    if let Ok(record) = NodeRecord::parse(data) {
        let mut bytes = Vec::new();
        record.write(&mut bytes);
        assert!(
            bytes == data,
            "NodeRecord did not round-trip ({} bytes in, {} out)",
            data.len(),
            bytes.len()
        );
        assert_eq!(record.encoded_len(), data.len());
        assert!(NodeRecord::parse(&bytes).as_ref() == Ok(&record));
        let signed = record.signed_bytes();
        assert!(signed.ends_with(&data[..data.len() - 64]));
        // Only its signature is checked against the key inside it.
        let key = meshd::keys::PublicKey::from_bytes(record.public_key);
        let _ = key.verify(&signed, &record.signature);
    }

    // Record extension items (subnets, VIPs): unknown items are skipped, so
    // the known ones must survive a re-encode unchanged.
    if let Ok(items) = decode_extension(data) {
        let bytes = encode_extension(&items);
        assert!(decode_extension(&bytes).as_ref() == Ok(&items));
    }
});
