//! Outer datagram framing: packet type dispatch, the two handshake parsers and
//! the data-packet receiver index. Successful parses must re-emit the exact
//! input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::crypto::{
    data_receiver_index, packet_type, HandshakeInit, HandshakeResponse, PacketType, DATA_OVERHEAD,
    RESPONSE_LEN,
};

fuzz_target!(|data: &[u8]| {
    let ty = packet_type(data);

    if let Ok(init) = HandshakeInit::parse(data) {
        assert_eq!(ty, Ok(PacketType::HandshakeInit));
        // The names are NodeNames: checked at decode, so valid by construction.
        assert!(init.initiator_name.len() <= meshd::name::NodeName::MAX_LEN);
        assert!(init.responder_name.len() <= meshd::name::NodeName::MAX_LEN);
        assert_eq!(init.buffer_len(), data.len());
        let bytes = init.emit();
        assert_eq!(bytes, data, "HandshakeInit did not round-trip");
        assert_eq!(HandshakeInit::parse(&bytes).as_ref(), Ok(&init));
    }

    if let Ok(resp) = HandshakeResponse::parse(data) {
        assert_eq!(ty, Ok(PacketType::HandshakeResponse));
        assert_eq!(data.len(), RESPONSE_LEN);
        let bytes = resp.emit();
        assert_eq!(bytes, data, "HandshakeResponse did not round-trip");
        assert_eq!(HandshakeResponse::parse(&bytes).as_ref(), Ok(&resp));
    }

    if let Ok(index) = data_receiver_index(data) {
        assert_eq!(ty, Ok(PacketType::Data));
        assert!(data.len() >= DATA_OVERHEAD);
        assert_eq!(index.to_be_bytes(), data[2..6]);
    }
});
