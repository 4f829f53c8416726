//! # loro-sansio
//!
//! A Sans-IO implementation of the [Loro Protocol](https://github.com/loro-dev/protocol) v1: the wire format,
//! fragmentation, the %ELO end-to-end-encrypted payloads, and complete client and server state machines.
//!
//! The core is `no_std` + `alloc`. It never touches a socket, a clock, a thread or a random source: bytes, time
//! ([`Instant`], milliseconds since an epoch you choose) and randomness come in through method arguments;
//! frames ([`Transmit`]), deadlines (`poll_timeout`) and events (`poll_event`) come out. The same core runs in a
//! tokio server, a game loop, a browser via wasm, a microcontroller, or a deterministic simulation.
//!
//! * [`wire`] — strict, zero-copy codec: [`wire::Message`] borrows the received frame; encoding writes into your
//!   buffer with an exact [`encoded_len`](wire::Message::encoded_len).
//! * [`fragment`] — splitting sends into frames ≤ 256 KiB and bounded, deadline-driven reassembly.
//! * [`server`] — many connections and rooms: joins decided by the application, durable acks, backfill,
//!   persistence events, limits with protocol-visible outcomes.
//!
//! ## The run loop (server)
//!
//! ```
//! use bytes::Bytes;
//! use loro_sansio::server::{BuiltinDocs, LoadedRoom, Server, ServerConfig, ServerEvent};
//! use loro_sansio::wire::{Body, CrdtType, Frame, Message, Permission};
//! use loro_sansio::{Instant, Transmit};
//!
//! # struct Rng(u64);
//! # impl rand_core::TryRng for Rng {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.try_next_u64()? as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); Ok(self.0) }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { for b in d { *b = self.try_next_u64()? as u8 } Ok(()) }
//! # }
//! let mut server = Server::new(ServerConfig::default(), BuiltinDocs, Rng(1));
//! let now = Instant::from_millis(0);
//! let conn = server.open_connection(now).unwrap();
//!
//! // A client's JoinRequest arrives.
//! let join = Message { crdt: CrdtType::Loro, room: "doc-1", body: Body::JoinRequest { auth: b"token", version: b"" } };
//! server.handle_frame(now, conn, Frame::Binary(join.encode_to_bytes().unwrap()));
//!
//! // The application decides, and loads the room from its storage.
//! while let Some(event) = server.poll_event() {
//!     match event {
//!         ServerEvent::JoinRequested { ticket, auth, .. } => {
//!             assert_eq!(&auth[..], b"token");
//!             server.accept_join(now, ticket, Permission::Write, Bytes::new()).unwrap();
//!         }
//!         ServerEvent::LoadRoom { ticket, .. } => {
//!             server.room_loaded(now, ticket, Ok(LoadedRoom::default())).unwrap();
//!         }
//!         _ => {}
//!     }
//! }
//!
//! // The driver writes what the server queued for the connection.
//! let Some(Transmit::Frame(Frame::Binary(reply))) = server.poll_transmit(conn) else { panic!() };
//! assert!(matches!(Message::decode(&reply).unwrap().body, Body::JoinResponseOk { .. }));
//! // ...and sleeps until server.poll_timeout(), then calls server.handle_timeout(clock.now()).
//! ```
//!
//! ## Panic policy
//!
//! No input from a peer can make the core panic, allocate from a wire-supplied count, or grow memory past a
//! configured bound. Malformed input becomes a typed error, a protocol reply (an Ack status, a JoinError) or a
//! close code. `expect`s in the core guard internal invariants only and say which.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod client;
pub mod close;
pub mod elo;
pub mod fragment;
pub mod room;
pub mod server;
pub mod time;
pub mod transmit;
pub mod wire;

/// Re-exported so applications use the same `bytes` version.
pub use bytes;
/// Re-exported so applications implement the RNG traits of the same version.
pub use rand_core;

pub use client::ClientSession;
pub use close::CloseCode;
pub use room::RoomKey;
pub use time::Instant;
pub use transmit::Transmit;
