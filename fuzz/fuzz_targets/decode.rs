//! Fuzz target `decode`: arbitrary bytes through every decoding entry point of the wire codec.
//!
//! Whatever the input, decoding must return (never panic, never abort on allocation). When a frame is accepted, it
//! must re-encode to exactly the same bytes through every encoder, and the owned decoder must agree with the
//! borrowed one. Text frames must classify without ever being parsed as protocol messages.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loro_sansio::wire::{Body, Frame, Inbound, Keepalive, Message, OwnedBody, OwnedMessage};

fuzz_target!(|data: &[u8]| {
    let borrowed = Message::decode(data);
    let shared = Bytes::copy_from_slice(data);
    let owned = OwnedMessage::decode(&shared);
    match (&borrowed, &owned) {
        (Ok(msg), Ok(own)) => {
            assert_eq!(msg.encoded_len(), data.len());
            let mut buf = vec![0u8; data.len()];
            assert_eq!(msg.encode_into_slice(&mut buf), Ok(data.len()));
            assert_eq!(&buf[..], data);
            let mut v = Vec::new();
            assert_eq!(msg.encode_into_vec(&mut v), Ok(data.len()));
            assert_eq!(&v[..], data);
            assert_eq!(own.as_message(), *msg);
            assert_eq!(own.encode_to_bytes().as_deref(), Ok(data));
            // Every update of a DocUpdate is reachable through the lazy iterator, and the owned list hands out
            // the same updates every way it can (borrowed, as shared handles, by index, by value).
            if let (Body::DocUpdate { updates, .. }, OwnedBody::DocUpdate { updates: list, .. }) = (msg.body, &own.body)
            {
                assert_eq!(updates.iter().count(), updates.len());
                assert_eq!(list.len(), updates.len());
                assert!(list.iter().eq(updates.iter()));
                assert_eq!(list.bytes().len(), updates.len());
                assert!(list.bytes().map(|b| b.to_vec()).eq(updates.iter().map(<[u8]>::to_vec)));
                assert!(list.clone().into_iter().map(|b| b.to_vec()).eq(updates.iter().map(<[u8]>::to_vec)));
                for (i, u) in updates.iter().enumerate().take(64) {
                    assert_eq!(list.get(i).as_deref(), Some(u));
                }
                assert_eq!(list.get(updates.len()), None);
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            // The offset an error names always lies within the frame (or at its end).
            assert!(a.offset() <= data.len());
        }
        _ => panic!("borrowed and owned decoders disagree: {borrowed:?} vs {owned:?}"),
    }

    match Frame::Binary(shared.clone()).decode() {
        Ok(Inbound::Message(m)) => assert_eq!(Ok(m), borrowed),
        Ok(other) => panic!("binary frame classified as {other:?}"),
        Err(e) => assert_eq!(Err(e), borrowed),
    }
    match Frame::Text(shared).decode() {
        Ok(Inbound::Keepalive(Keepalive::Ping)) => assert_eq!(data, b"ping"),
        Ok(Inbound::Keepalive(Keepalive::Pong)) => assert_eq!(data, b"pong"),
        Ok(Inbound::OtherText(t)) => {
            assert_eq!(t, data);
            assert!(data != b"ping" && data != b"pong");
        }
        other => panic!("text frame classified as {other:?}"),
    }
});
