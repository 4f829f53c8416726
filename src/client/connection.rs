//! Transport lifecycle: opening, losing and closing transports; starting joins; keepalive timers.

use alloc::vec::Vec;

use super::event::{
    ClientEvent, ClosedBy, ConnectionStatus, DropReason, JoinFailure, JoinReason, JoinTicket, NextAttempt, PingOutcome,
    RoomStatus, StopReason,
};
use super::keepalive::KeepaliveAction;
use super::outbox::BatchState;
use super::room::Phase;
use super::ClientSession;
use crate::close::{is_fatal_close, CloseCode};
use crate::room::RoomKey;
use crate::wire::Utf8Bytes;
use crate::Transmit;

impl ClientSession {
    /// Issues [`Transmit::Open`].
    pub(super) fn open_transport(&mut self) {
        self.retry.cancel();
        self.counters.opens += 1;
        self.transmits.push_back(Transmit::Open);
        self.set_status(ConnectionStatus::Connecting);
    }

    /// Closes the transport from this side with a browser-legal code, then handles the loss.
    pub(super) fn local_close(&mut self, code: CloseCode, reason: &'static str) {
        debug_assert!(code.is_client_sendable());
        let reason = Utf8Bytes::from_static(reason);
        self.transmits.push_back(Transmit::Close { code, reason: reason.clone() });
        self.lose_transport(Some(code), reason, ClosedBy::Local);
    }

    /// The transport is gone (either side). Decides what comes next, then updates every room, the outbox and
    /// the pings, emitting the events in the documented order.
    pub(super) fn lose_transport(&mut self, code: Option<CloseCode>, reason: Utf8Bytes, by: ClosedBy) {
        let next = if by == ClosedBy::Remote && is_fatal_close(code, &reason) {
            NextAttempt::Never(StopReason::Fatal)
        } else if !self.config.reconnect.enabled {
            NextAttempt::Never(StopReason::Disabled)
        } else if !self.online {
            NextAttempt::WhenOnline
        } else {
            let random = self.random_u32();
            match self.retry.schedule(&self.config.reconnect, self.now, random) {
                Ok(at) => NextAttempt::At(at),
                Err(stop) => NextAttempt::Never(stop),
            }
        };
        self.keepalive = None;
        self.reassembler.clear(&mut self.budget);
        self.events.push_back(ClientEvent::TransportClosed { code, reason, by, next });
        self.set_status(ConnectionStatus::Disconnected);
        let stop = match next {
            NextAttempt::Never(stop) => {
                self.stopped = Some(stop);
                Some(stop)
            }
            _ => None,
        };
        // In-flight batches go back to the queue; ephemeral rooms' batches are stale after a reconnect.
        let replay_ephemeral = self.config.replay_ephemeral;
        for id in self.outbox.ids_where(|_| true) {
            let ephemeral = self.outbox.get(&id).is_some_and(|b| b.room.crdt.is_ephemeral());
            if ephemeral && !replay_ephemeral {
                self.drop_batch(id, DropReason::EphemeralNotReplayed);
            } else if let Some(b) = self.outbox.get_mut(&id) {
                b.state = BatchState::Queued;
            }
        }
        let keys: Vec<RoomKey> = self.rooms.keys().cloned().collect();
        for key in keys {
            let Some(room) = self.rooms.get_mut(&key) else { continue };
            room.phase = Phase::Idle;
            match stop {
                Some(stop) if !room.joined_once => {
                    // A join that never succeeded does not wait for an explicit reconnect: it fails now.
                    self.events.push_back(ClientEvent::JoinFailed {
                        room: key.clone(),
                        rejoin: false,
                        failure: JoinFailure::Stopped(stop),
                    });
                    room.set_status(RoomStatus::Disconnected, &mut self.events);
                    self.rooms.remove(&key);
                    self.forget_room_state(&key, DropReason::RoomEnded);
                }
                Some(_) => room.set_status(RoomStatus::Disconnected, &mut self.events),
                None => {
                    let status = room.joining_status();
                    room.set_status(status, &mut self.events);
                }
            }
        }
        self.resolve_pings(PingOutcome::Disconnected);
    }

    /// `close`/`destroy`: close the transport with 1000 and end everything pending.
    pub(super) fn shut_down(&mut self, why: StopReason) {
        let (failure, drop, reason) = match why {
            StopReason::Destroyed => (JoinFailure::Destroyed, DropReason::Destroyed, "client destroyed"),
            _ => (JoinFailure::Closed, DropReason::Closed, "client closed"),
        };
        self.want_connection = false;
        self.retry.cancel();
        self.stopped = Some(why);
        if self.status != ConnectionStatus::Disconnected {
            let reason = Utf8Bytes::from_static(reason);
            self.transmits.push_back(Transmit::Close { code: CloseCode::NORMAL, reason: reason.clone() });
            self.events.push_back(ClientEvent::TransportClosed {
                code: Some(CloseCode::NORMAL),
                reason,
                by: ClosedBy::Local,
                next: NextAttempt::Never(why),
            });
            self.keepalive = None;
            self.set_status(ConnectionStatus::Disconnected);
        }
        self.reassembler.clear(&mut self.budget);
        let keys: Vec<RoomKey> = self.rooms.keys().cloned().collect();
        for key in keys {
            let Some(room) = self.rooms.get_mut(&key) else { continue };
            room.phase = Phase::Idle;
            if !room.joined_once {
                self.events.push_back(ClientEvent::JoinFailed {
                    room: key.clone(),
                    rejoin: false,
                    failure: failure.clone(),
                });
            }
            room.set_status(RoomStatus::Disconnected, &mut self.events);
            if !room.joined_once {
                self.rooms.remove(&key);
            }
        }
        for id in self.outbox.ids_where(|_| true) {
            self.drop_batch(id, drop.clone());
        }
        self.resolve_pings(PingOutcome::Closed);
    }

    /// Resolves every manual ping with `outcome`.
    pub(super) fn resolve_pings(&mut self, outcome: PingOutcome) {
        while let Some((id, _)) = self.pings.pop_front() {
            self.events.push_back(ClientEvent::PingResult { id, outcome });
        }
    }

    /// Asks for fresh join parameters for `key` (on an open transport): a new ticket replaces any older one.
    pub(super) fn start_join(&mut self, key: &RoomKey) {
        let Some(room) = self.rooms.get_mut(key) else { return };
        // A room left `Disconnected` by a stop or a close is joining again.
        let status = room.joining_status();
        room.set_status(status, &mut self.events);
        let reason = if room.joined_once || room.rejoin_suggested { JoinReason::Rejoin } else { JoinReason::Initial };
        self.request_params(key, reason);
    }

    /// Emits [`ClientEvent::JoinParamsNeeded`] for `key` with a fresh ticket.
    pub(super) fn request_params(&mut self, key: &RoomKey, reason: JoinReason) {
        let Some(room) = self.rooms.get_mut(key) else { return };
        let ticket = JoinTicket(self.next_ticket);
        self.next_ticket += 1;
        if !matches!(reason, JoinReason::VersionUnknown { .. }) {
            room.version_retry_used = false;
        }
        room.phase = Phase::AwaitingParams { ticket, reason: reason.clone() };
        self.events.push_back(ClientEvent::JoinParamsNeeded { ticket, room: room.key.clone(), reason });
    }

    /// Runs the keepalive timers.
    pub(super) fn keepalive_timeout(&mut self, now: crate::time::Instant) {
        let Some(k) = self.keepalive.as_mut() else { return };
        let probing = k.probing();
        match k.handle_timeout(now) {
            KeepaliveAction::None => {}
            KeepaliveAction::Ping => {
                if probing {
                    self.counters.missed_pongs += 1;
                }
                self.push_ping();
            }
            KeepaliveAction::Close => {
                self.counters.missed_pongs += 1;
                self.local_close(CloseCode::PING_TIMEOUT, "ping_timeout");
            }
        }
    }
}
