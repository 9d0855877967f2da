//! Feeds arbitrary bytes to `ServerMsg::decode`, as a broken or hostile
//! server would to a client.
//!
//! Decoding must never panic, and any frame it accepts must re-encode to a
//! frame no longer than the input that decodes to the same message.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tessera_protocol::ServerMsg;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = ServerMsg::decode(&Bytes::copy_from_slice(data)) else {
        return;
    };
    let again = msg.encode();
    assert!(again.len() <= data.len(), "canonical form is longer");
    assert_eq!(ServerMsg::decode(&Bytes::from(again)), Ok(msg));
});
