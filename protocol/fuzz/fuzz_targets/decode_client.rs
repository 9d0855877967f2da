//! Feeds arbitrary bytes to `ClientMsg::decode`, as a hostile client would.
//!
//! Decoding must never panic, and any frame it accepts must re-encode to a
//! frame no longer than the input that decodes to the same message.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tessera_protocol::ClientMsg;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = ClientMsg::decode(&Bytes::copy_from_slice(data)) else {
        return;
    };
    let again = msg.encode();
    assert!(again.len() <= data.len(), "canonical form is longer");
    assert_eq!(ClientMsg::decode(&Bytes::from(again)), Ok(msg));
});
