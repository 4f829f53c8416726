//! # loro-sansio
//!
//! A Sans-IO implementation of the [Loro Protocol](https://github.com/loro-dev/protocol) v1.
//!
//! The core is `no_std` + `alloc`: it never touches a socket, a clock, a thread or a random source. Bytes,
//! time ([`Instant`]) and randomness come in through method arguments; frames, deadlines and events come out.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod close;
pub mod elo;
pub mod fragment;
pub mod room;
pub mod server;
pub mod time;
pub mod transmit;
pub mod wire;

pub use close::CloseCode;
pub use room::RoomKey;
pub use time::Instant;
pub use transmit::Transmit;
