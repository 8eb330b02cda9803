//! Key material text: PEM blocks, tinc-base64 and signed documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::keys::{base64, verify_document, PrivateKey, PublicKey};
use std::sync::OnceLock;

/// Public key of the tinc 1.1 test vector `proto/vectors/tinc11/alpha.host`,
/// so the signed-document seed verifies.
const ALPHA_PUBLIC: &str = "FmAFQKUH1n7BAbYNg51HFey9ZIRskODVhqiz9unJBaE";

fn alpha() -> PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    *KEY.get_or_init(|| PublicKey::from_tinc_base64(ALPHA_PUBLIC).expect("test vector key"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(key) = PrivateKey::from_pem_str(&text) {
        // A loaded key writes back to a file that loads to the same key.
        let pem = key.to_pem_string();
        let again = PrivateKey::from_pem_str(&pem).expect("re-read own PEM");
        assert_eq!(again.public(), key.public());
        assert_eq!(again.to_pem_string(), pem);
        let sig = key.sign(data);
        assert!(key.public().verify(data, &sig));
    }

    if let Ok(key) = PublicKey::from_pem_str(&text) {
        assert!(key.is_valid_point());
        assert_eq!(
            PublicKey::from_pem_str(&key.to_pem_string()).ok(),
            Some(key)
        );
    }

    if let Ok(key) = PublicKey::from_tinc_base64(&text) {
        assert!(key.is_valid_point());
        assert_eq!(
            PublicKey::from_tinc_base64(&key.to_tinc_base64()).ok(),
            Some(key)
        );
        assert_eq!(text.parse::<PublicKey>().ok(), Some(key));
    }

    if let Ok(bytes) = base64::decode(&text) {
        let encoded = base64::encode(&bytes);
        assert_eq!(encoded.len(), base64::encoded_len(bytes.len()));
        assert_eq!(encoded.len(), text.len());
        assert_eq!(base64::decode(&encoded).as_deref(), Ok(&bytes[..]));
        assert_eq!(
            base64::decode(&base64::encode_urlsafe(&bytes)).as_deref(),
            Ok(&bytes[..])
        );
    }

    let fixed = alpha();
    if let Ok((signer, time, body)) = verify_document(data, |_| Some(fixed)) {
        assert!(time > 0);
        assert!(!signer.is_empty());
        assert!(data.ends_with(&body));
    }
    // An unknown signer is an error, never a panic.
    assert!(verify_document(data, |_| None).is_err());
});
