//! Frames from the server: keepalive, joins, updates, fragments, room errors and Acks.

use bytes::Bytes;

use super::event::{ClientEvent, DropReason, IncomingFailure, JoinFailure, JoinReason, PingOutcome, RoomErrorAction};
use super::outbox::BatchState;
use super::room::Phase;
use super::{ClientSession, RoomStatus};
use crate::close::CloseCode;
use crate::fragment::{FragmentOutcome, HeaderOutcome, RejectReason};
use crate::room::RoomKey;
use crate::time::Instant;
use crate::wire::{
    bytes_of, AckStatus, BatchId, Body, CrdtType, Frame, Inbound, JoinErrorCode, Keepalive, Message, Permission,
    RoomErrorCode, UpdateList, Utf8Bytes, WirePlace,
};

impl ClientSession {
    /// Handles one frame on the open transport.
    pub(super) fn receive(&mut self, now: Instant, frame: Frame) {
        self.counters.frames_received += 1;
        if let Some(k) = self.keepalive.as_mut() {
            k.on_receive(now);
        }
        let msg = match frame.decode() {
            Err(error) => {
                self.counters.decode_errors += 1;
                self.events.push_back(ClientEvent::ProtocolError { error });
                if self.config.close_on_protocol_error {
                    self.local_close(CloseCode::CLIENT_PROTOCOL_ERROR, "protocol_error");
                }
                return;
            }
            Ok(Inbound::Keepalive(Keepalive::Ping)) => {
                self.retry.reset();
                self.push_frame(Frame::pong());
                return;
            }
            Ok(Inbound::Keepalive(Keepalive::Pong)) => {
                self.retry.reset();
                self.counters.pongs_received += 1;
                self.on_pong(now);
                return;
            }
            Ok(Inbound::OtherText(_)) => {
                self.counters.ignored_text_frames += 1;
                return;
            }
            Ok(Inbound::Message(msg)) => msg,
        };
        self.retry.reset();
        let Body::DocUpdate { updates, batch_id } = msg.body else {
            self.on_message(now, frame.payload(), msg);
            return;
        };
        // The hot path, a DocUpdate: the event keeps the frame's update region under the frame's own handle (no
        // allocation, no copy, no reference-count update).
        let Some(room) = self.registered(msg.crdt, msg.room) else {
            self.counters.unknown_room_messages += 1;
            return;
        };
        let place = WirePlace::locate(frame.payload(), &updates);
        let updates = match place {
            Some(place) => {
                let (Frame::Binary(own) | Frame::Text(own)) = frame;
                UpdateList::from_place(own, place)
            }
            None => UpdateList::copied(&updates),
        };
        self.counters.batches_received += 1;
        self.events.push_back(ClientEvent::Updates { room, batch_id, updates });
    }

    fn on_pong(&mut self, now: Instant) {
        let Some(rtt) = self.keepalive.as_mut().and_then(|k| k.on_pong(now)) else { return };
        self.latency = Some(rtt);
        self.events.push_back(ClientEvent::Latency { rtt });
        self.resolve_pings(PingOutcome::Pong { rtt });
    }

    /// The registered room a message names: its stored key (so events do not keep the frame alive).
    fn registered(&self, crdt: CrdtType, room: &str) -> Option<RoomKey> {
        self.rooms.find(crdt, room).map(|r| r.key.clone())
    }

    fn on_message(&mut self, now: Instant, buf: &Bytes, msg: Message<'_>) {
        if let Body::JoinRequest { .. } | Body::Leave = msg.body {
            self.counters.unexpected_messages += 1;
            let room = RoomKey { crdt: msg.crdt, room: Utf8Bytes::from(msg.room) };
            self.events.push_back(ClientEvent::UnexpectedMessage { room, message_type: msg.message_type() });
            return;
        }
        let Some(key) = self.registered(msg.crdt, msg.room) else {
            self.counters.unknown_room_messages += 1;
            return;
        };
        match msg.body {
            Body::JoinRequest { .. } | Body::Leave => {}
            Body::JoinResponseOk { permission, version, extra } => {
                self.on_join_ok(&key, permission, bytes_of(buf, version), bytes_of(buf, extra));
            }
            Body::JoinError { code, message, receiver_version, app_code } => {
                let message = Utf8Bytes::slice_of(buf, message);
                let receiver_version = receiver_version.map(|v| bytes_of(buf, v));
                let app_code = app_code.map(|a| Utf8Bytes::slice_of(buf, a));
                self.on_join_error(&key, code, message, receiver_version, app_code);
            }
            // `receive` handles DocUpdates itself; this arm is the same, for completeness.
            Body::DocUpdate { updates, batch_id } => {
                let updates = UpdateList::from_decoded(buf, &updates);
                self.counters.batches_received += 1;
                self.events.push_back(ClientEvent::Updates { room: key, batch_id, updates });
            }
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                let outcome = self.reassembler.handle_header(
                    now,
                    key.crdt,
                    key.room.as_str(),
                    batch_id,
                    fragment_count,
                    total_size,
                    &mut self.budget,
                );
                if let HeaderOutcome::Rejected(reason) = outcome {
                    self.incoming_failed(key, batch_id, reason);
                }
            }
            Body::Fragment { batch_id, index, data } => {
                let data = bytes_of(buf, data);
                let outcome = self.reassembler.handle_fragment(
                    now,
                    key.crdt,
                    key.room.as_str(),
                    batch_id,
                    index,
                    data,
                    &mut self.budget,
                );
                match outcome {
                    FragmentOutcome::Complete(update) => {
                        self.counters.batches_received += 1;
                        self.events.push_back(ClientEvent::Updates {
                            room: key,
                            batch_id,
                            updates: UpdateList::one(update),
                        });
                    }
                    FragmentOutcome::Rejected(reason) => self.incoming_failed(key, batch_id, reason),
                    FragmentOutcome::Stored | FragmentOutcome::Duplicate | FragmentOutcome::Ignored => {}
                }
            }
            Body::RoomError { code, message } => self.on_room_error(&key, code, Utf8Bytes::slice_of(buf, message)),
            Body::Ack { ref_id, status } => self.on_ack(&key, ref_id, status),
        }
    }

    /// Answers a failed incoming batch with an Ack and reports it.
    fn incoming_failed(&mut self, room: RoomKey, batch_id: BatchId, reason: RejectReason) {
        self.send_ack(&room, batch_id, reason.ack_status());
        self.counters.incoming_batches_failed += 1;
        self.events.push_back(ClientEvent::IncomingBatchFailed {
            room,
            batch_id,
            failure: IncomingFailure::Rejected(reason),
        });
    }

    fn send_ack(&mut self, room: &RoomKey, ref_id: BatchId, status: AckStatus) {
        let msg = Message { crdt: room.crdt, room: room.room.as_str(), body: Body::Ack { ref_id, status } };
        if let Ok(frame) = msg.encode_to_bytes() {
            self.push_frame(Frame::Binary(frame));
        }
    }

    /// Expires incoming fragment batches: `Ack(fragment_timeout)` to the server and an event for each.
    pub(super) fn reassembly_timeout(&mut self, now: Instant) {
        while let Some(key) = self.reassembler.poll_expired(now, &mut self.budget) {
            let room = RoomKey { crdt: key.crdt, room: key.room };
            if self.status == super::ConnectionStatus::Connected {
                self.send_ack(&room, key.batch_id, AckStatus::FRAGMENT_TIMEOUT);
            }
            self.counters.incoming_batches_failed += 1;
            self.events.push_back(ClientEvent::IncomingBatchFailed {
                room,
                batch_id: key.batch_id,
                failure: IncomingFailure::Expired,
            });
        }
    }

    fn on_join_ok(&mut self, key: &RoomKey, permission: Permission, version: Bytes, extra: Bytes) {
        let Some(room) = self.rooms.get_mut(key) else { return };
        if room.phase != Phase::Requested {
            self.counters.unsolicited_join_responses += 1;
            return;
        }
        room.phase = Phase::Joined;
        room.permission = Some(permission);
        room.rejoin_suggested = false;
        room.version_retry_used = false;
        let rejoin = room.joined_once;
        room.joined_once = true;
        self.events.push_back(ClientEvent::Joined { room: key.clone(), permission, version, extra, rejoin });
        room.set_status(RoomStatus::Joined, &mut self.events);
        if permission.can_write() {
            for id in self.outbox.ids_where(|b| &b.room == key) {
                self.transmit_batch(id);
            }
        } else {
            self.drop_room_batches(key, DropReason::ReadOnly);
        }
    }

    fn on_join_error(
        &mut self,
        key: &RoomKey,
        code: JoinErrorCode,
        message: Utf8Bytes,
        receiver_version: Option<Bytes>,
        app_code: Option<Utf8Bytes>,
    ) {
        let Some(room) = self.rooms.get_mut(key) else { return };
        if room.phase != Phase::Requested {
            self.counters.unsolicited_join_responses += 1;
            return;
        }
        if code == JoinErrorCode::VERSION_UNKNOWN && !room.version_retry_used {
            room.version_retry_used = true;
            self.request_params(key, JoinReason::VersionUnknown { receiver_version });
            return;
        }
        let rejoin = room.joined_once;
        self.events.push_back(ClientEvent::JoinFailed {
            room: key.clone(),
            rejoin,
            failure: JoinFailure::Rejected { code, message, app_code },
        });
        self.end_room(key);
    }

    /// Ends a room after an error: status `Error`, forgotten, its batches dropped.
    fn end_room(&mut self, key: &RoomKey) {
        if let Some(mut room) = self.rooms.remove(key) {
            room.set_status(RoomStatus::Error, &mut self.events);
        }
        self.forget_room_state(key, DropReason::RoomEnded);
    }

    fn on_room_error(&mut self, key: &RoomKey, code: RoomErrorCode, message: Utf8Bytes) {
        let Some(room) = self.rooms.get_mut(key) else { return };
        if code == RoomErrorCode::REJOIN_SUGGESTED && !room.rejoin_suggested {
            room.rejoin_suggested = true;
            self.events.push_back(ClientEvent::RoomError {
                room: key.clone(),
                code,
                message,
                action: RoomErrorAction::Rejoining,
            });
            let status = room.joining_status();
            room.set_status(status, &mut self.events);
            // The server dropped our membership: batches in flight are sent again after the rejoin, and
            // batches still being reassembled for us will not complete.
            for id in self.outbox.ids_where(|b| &b.room == key && b.state == BatchState::InFlight) {
                if let Some(b) = self.outbox.get_mut(&id) {
                    b.state = BatchState::Queued;
                }
            }
            self.reassembler.drop_room(key.crdt, key.room.as_str(), &mut self.budget);
            self.request_params(key, JoinReason::Rejoin);
            return;
        }
        let joined_once = room.joined_once;
        self.events.push_back(ClientEvent::RoomError {
            room: key.clone(),
            code,
            message: message.clone(),
            action: RoomErrorAction::Ended,
        });
        if !joined_once {
            self.events.push_back(ClientEvent::JoinFailed {
                room: key.clone(),
                rejoin: false,
                failure: JoinFailure::RoomError { code, message },
            });
        }
        self.end_room(key);
    }

    fn on_ack(&mut self, key: &RoomKey, ref_id: BatchId, status: AckStatus) {
        let max_resends = self.config.max_resends;
        let Some(b) = self.outbox.get_mut(&ref_id).filter(|b| b.transmissions > 0 && &b.room == key) else {
            self.counters.unknown_acks += 1;
            return;
        };
        if status.is_ok() {
            if let Some(b) = self.outbox.remove(&ref_id) {
                self.counters.batches_acked += 1;
                let range = b.range();
                self.events.push_back(ClientEvent::Acked { room: b.room, send: b.send, batch_id: ref_id, range });
            }
            return;
        }
        if b.state == BatchState::Queued {
            // Answered for an earlier transmission; the batch is already queued to go again.
            self.counters.superseded_acks += 1;
            return;
        }
        if status == AckStatus::FRAGMENT_TIMEOUT && b.resends < max_resends && self.room_writable(key) {
            let Some(b) = self.outbox.get_mut(&ref_id) else { return };
            b.resends += 1;
            let ev =
                ClientEvent::BatchResent { room: b.room.clone(), send: b.send, batch_id: ref_id, resends: b.resends };
            self.events.push_back(ev);
            self.transmit_batch(ref_id);
            return;
        }
        if let Some(b) = self.outbox.remove(&ref_id) {
            self.counters.batches_rejected += 1;
            let range = b.range();
            self.events.push_back(ClientEvent::UpdateRejected {
                room: b.room,
                send: b.send,
                batch_id: ref_id,
                status,
                range,
                updates: b.updates,
            });
        }
    }
}
