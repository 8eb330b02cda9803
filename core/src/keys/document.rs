//! tinc 1.1's `tinc sign` / `tinc verify` document format (part of the keys
//! module): a `Signature = NAME UNIXTIME SIG` line followed by the data, where
//! SIG is Ed25519 over `data ‖ " NAME UNIXTIME"`, in tinc-base64 (86 chars).

use super::{base64, KeyError, PrivateKey, PublicKey};
use crate::name::NodeName;

fn signed_message(data: &[u8], name: &str, unix_time: u64) -> Vec<u8> {
    let trailer = format!(" {name} {unix_time}");
    let mut msg = Vec::with_capacity(data.len() + trailer.len());
    msg.extend_from_slice(data);
    msg.extend_from_slice(trailer.as_bytes());
    msg
}

/// Produces what `tinc sign` prints: `Signature = NAME UNIXTIME SIG\n`
/// followed by `data` unchanged.
pub fn sign_document(key: &PrivateKey, name: &NodeName, unix_time: u64, data: &[u8]) -> Vec<u8> {
    let sig = key.sign(&signed_message(data, name, unix_time));
    let mut out = format!("Signature = {name} {unix_time} {}\n", base64::encode(&sig)).into_bytes();
    out.extend_from_slice(data);
    out
}

fn malformed(reason: &'static str) -> KeyError {
    KeyError::MalformedDocument { reason }
}

/// Checks a `tinc sign` document like `tinc verify`: parses the first line,
/// looks up the signer's key with `lookup`, verifies the signature over
/// `data ‖ " NAME UNIXTIME"` and returns `(signer, unix_time, data)`.
pub fn verify_document(
    signed: &[u8],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<(NodeName, u64, Vec<u8>), KeyError> {
    let newline = signed
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| malformed("no newline after the Signature line"))?;
    let (header, data) = (&signed[..newline], &signed[newline + 1..]);
    let header =
        std::str::from_utf8(header).map_err(|_| malformed("Signature line is not UTF-8"))?;
    let fields = header
        .strip_prefix("Signature")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| malformed("first line does not start with \"Signature =\""))?;
    let mut fields = fields.split_ascii_whitespace();
    let (signer, time, sig) = match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(signer), Some(time), Some(sig), None) => (signer, time, sig),
        _ => {
            return Err(malformed(
                "expected \"Signature = NAME UNIXTIME SIGNATURE\"",
            ))
        }
    };
    let signer = NodeName::new(signer).map_err(|error| KeyError::BadSignerName { error })?;
    let unix_time: u64 = time
        .parse()
        .map_err(|_| malformed("signature time is not a number"))?;
    if unix_time == 0 {
        return Err(malformed("signature time is zero"));
    }
    if sig.len() != base64::encoded_len(64) {
        return Err(malformed("signature is not 86 characters of tinc-base64"));
    }
    let sig: [u8; 64] = base64::decode(sig)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| malformed("signature is not 86 characters of tinc-base64"))?;
    let Some(key) = lookup(&signer) else {
        return Err(KeyError::UnknownSigner { signer });
    };
    let mut msg = signed_message(data, &signer, unix_time);
    if !key.verify(&msg, &sig) {
        return Err(KeyError::BadSignature { signer });
    }
    msg.truncate(data.len());
    Ok((signer, unix_time, msg))
}
