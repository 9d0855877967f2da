//! Feeds arbitrary bytes as a QUIC control stream from a hostile client:
//! length prefixes, each checked against the client limit before the frame
//! is taken, then the frame decoded. Never panics; stops at the first
//! refusal as the server does.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tessera_protocol::ClientMsg;
use tessera_protocol::limits::MAX_CLIENT_FRAME;
use tessera_protocol::stream::{LENGTH_PREFIX, frame_length};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= LENGTH_PREFIX {
        let (prefix, after) = rest.split_at(LENGTH_PREFIX);
        let prefix: [u8; LENGTH_PREFIX] = prefix.try_into().expect("four bytes");
        let Ok(len) = frame_length(prefix, MAX_CLIENT_FRAME) else {
            return;
        };
        if after.len() < len {
            return;
        }
        let (frame, next) = after.split_at(len);
        if ClientMsg::decode(&Bytes::copy_from_slice(frame)).is_err() {
            return;
        }
        rest = next;
    }
});
