//! Allocation counts of the codec, measured with a counting global allocator in this test binary of its own.
//!
//! Counts are kept per thread, so nothing the test harness does on other threads can leak into a measurement, and
//! the tests also take one lock so they run one after another. Proved here: decoding (golden frames, a DocUpdate
//! with many updates including iterating every update, and hostile frames) allocates nothing; `encode_into_slice`
//! allocates nothing; `encode_into_vec` into a Vec that already has the capacity allocates nothing;
//! `encode_to_bytes` allocates exactly once; an owned decode of a DocUpdate (its updates kept as one region of the
//! frame) allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Mutex;

#[path = "common/golden.rs"]
mod golden;
use golden::hex;

use bytes::Bytes;
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, Inbound, JoinErrorCode, Message, OwnedBody, OwnedMessage, Permission,
    RoomErrorCode, Updates,
};

/// Wraps the system allocator and counts every allocation (and reallocation) made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: never panic inside the allocator, even while the thread is being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc` contract; the counter is a
// const-initialised thread-local `Cell` without a destructor, so touching it never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was allocated by `System` through this wrapper with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this wrapper with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Serialises the tests of this binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f` and returns how many allocations this thread made during it.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, r)
}

const GOLDEN: [&str; 13] = golden::GOLDEN_HEX;

/// Reads every field of a decoded message (and every update), so a lazy view cannot skip work.
fn touch(m: &Message<'_>) -> usize {
    let mut sum = black_box(m.crdt) as usize + black_box(m.room).len();
    match m.body {
        Body::JoinRequest { auth, version } => sum += black_box(auth).len() + black_box(version).len(),
        Body::JoinResponseOk { permission, version, extra } => {
            sum += black_box(permission) as usize + black_box(version).len() + black_box(extra).len()
        }
        Body::JoinError { code, message, receiver_version, app_code } => {
            sum += usize::from(black_box(code).0)
                + black_box(message).len()
                + black_box(receiver_version).map_or(0, <[u8]>::len)
                + black_box(app_code).map_or(0, str::len)
        }
        Body::DocUpdate { updates, batch_id } => {
            for u in updates {
                sum += black_box(u).len();
            }
            sum += black_box(batch_id).0[0] as usize;
        }
        Body::FragmentHeader { batch_id, fragment_count, total_size } => {
            sum +=
                black_box(batch_id).0[0] as usize + black_box(fragment_count) as usize + black_box(total_size) as usize
        }
        Body::Fragment { batch_id, index, data } => {
            sum += black_box(batch_id).0[0] as usize + black_box(index) as usize + black_box(data).len()
        }
        Body::RoomError { code, message } => sum += usize::from(black_box(code).0) + black_box(message).len(),
        Body::Leave => {}
        Body::Ack { ref_id, status } => sum += black_box(ref_id).0[0] as usize + usize::from(black_box(status).0),
    }
    sum
}

/// A DocUpdate of `n` updates of varied sizes, encoded.
fn many_updates(n: usize) -> Vec<u8> {
    let store: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i % 200]).collect();
    let parts: Vec<&[u8]> = store.iter().map(Vec::as_slice).collect();
    let m = Message {
        crdt: CrdtType::Loro,
        room: "doc",
        body: Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BatchId::from_u64(9) },
    };
    m.encode_to_bytes().expect("valid").to_vec()
}

#[test]
fn decode_allocates_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let frames: Vec<Vec<u8>> = GOLDEN.iter().map(|h| hex(h)).collect();
    for f in &frames {
        let (n, sum) = allocations(|| {
            let m = Message::decode(black_box(f)).expect("golden frame decodes");
            touch(&m)
        });
        assert_eq!(n, 0, "decode of {f:02x?} allocated");
        black_box(sum);
    }

    // Many updates: decoding validates them all, iterating yields each; neither allocates.
    let big = many_updates(2000);
    let (n, count) = allocations(|| {
        let m = Message::decode(black_box(&big)).expect("decodes");
        let mut count = 0;
        if let Body::DocUpdate { updates, .. } = m.body {
            for u in updates.iter() {
                black_box(u);
                count += 1;
            }
            black_box(updates.payload_len());
        }
        black_box(touch(&m));
        count
    });
    assert_eq!(count, 2000);
    assert_eq!(n, 0, "decode + iteration of 2000 updates allocated {n} times");

    // Through the transport frame type, for binary and text frames alike.
    // (The frames are built outside the measurement: cloning a `Bytes` made from a Vec may allocate its shared
    // header, which is the transport's business, not the codec's.)
    let binary = Frame::Binary(Bytes::from(big.clone()));
    let text = Frame::Text(Bytes::from_static(b"ping"));
    let other = Frame::Text(Bytes::from_static(b"hello"));
    let (n, _) = allocations(|| {
        let a = matches!(binary.decode(), Ok(Inbound::Message(m)) if touch(&m) > 0);
        let b = matches!(text.decode(), Ok(Inbound::Keepalive(_)));
        let c = matches!(other.decode(), Ok(Inbound::OtherText(_)));
        assert!(a && b && c);
    });
    assert_eq!(n, 0, "Frame::decode allocated");

    // Hostile frames are rejected without allocating either, whatever count or length they claim.
    let hostile: Vec<Vec<u8>> = [
        "254c4f52017203808080808020",
        "254c4f52017203ffffffffffffffffff01",
        "254c4f52017203ffffffff0f",
        "254c4f52017200ffffffff0f",
        "254c4f52017204000000000000000080808080100100",
    ]
    .iter()
    .map(|h| hex(h))
    .collect();
    let mut huge_count = hex("254c4f52017203ffffffff0f");
    huge_count.extend(std::iter::repeat_n(0u8, 100_000));
    for f in hostile.iter().chain([&huge_count]) {
        let (n, r) = allocations(|| Message::decode(black_box(f)).is_err());
        assert!(r, "hostile frame accepted");
        assert_eq!(n, 0, "rejecting a hostile frame allocated");
    }
}

#[test]
fn owned_decode_of_a_doc_update_allocates_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The frame's buffer is already shared (as after any clone): making the first extra handle of a `Bytes` built
    // from a Vec allocates its shared header, which is the transport's cost, not the codec's.
    let frame = Bytes::from(many_updates(2000));
    drop(black_box(frame.clone()));
    let (n, count) = allocations(|| {
        let m = OwnedMessage::decode(black_box(&frame)).expect("decodes");
        let OwnedBody::DocUpdate { updates, .. } = &m.body else { panic!("a DocUpdate") };
        let mut count = 0;
        for u in updates {
            black_box(u);
            count += 1;
        }
        // Taking an update out as its own handle does not allocate either.
        black_box(updates.get(1999));
        black_box(updates.bytes().count());
        black_box(m.room.len());
        count
    });
    assert_eq!(count, 2000);
    assert_eq!(n, 0, "owned decode of 2000 updates allocated {n} times");

    // Collecting every update's handle into a vector is one allocation, exactly sized.
    let m = OwnedMessage::decode(&frame).expect("decodes");
    let OwnedBody::DocUpdate { updates, .. } = &m.body else { panic!("a DocUpdate") };
    let (n, v) = allocations(|| updates.to_vec());
    assert_eq!((n, v.len()), (1, 2000), "to_vec allocated {n} times");
}

#[test]
fn encode_into_slice_allocates_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let frames: Vec<Vec<u8>> = GOLDEN.iter().map(|h| hex(h)).chain([many_updates(500)]).collect();
    let mut buf = vec![0u8; 256 * 1024];
    for f in &frames {
        let m = Message::decode(f).expect("decodes");
        let (n, written) = allocations(|| m.encode_into_slice(black_box(&mut buf)).expect("fits"));
        assert_eq!(n, 0, "encode_into_slice allocated");
        assert_eq!(&buf[..written], &f[..]);
    }
    // A message built from the caller's own slices (not a decoded region) as well.
    let parts: [&[u8]; 3] = [b"one", b"two", &[7; 1000]];
    let m = Message {
        crdt: CrdtType::Yjs,
        room: "room",
        body: Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BatchId([3; 8]) },
    };
    let (n, _) = allocations(|| m.encode_into_slice(&mut buf).expect("fits"));
    assert_eq!(n, 0);
}

#[test]
fn encode_into_reserved_vec_allocates_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parts: [&[u8]; 2] = [b"alpha", b"beta"];
    let data = [5u8; 4000];
    let messages = [
        Message { crdt: CrdtType::Loro, room: "r", body: Body::JoinRequest { auth: b"token", version: b"v" } },
        Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::JoinResponseOk { permission: Permission::Write, version: b"v", extra: b"" },
        },
        Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::JoinError {
                code: JoinErrorCode::APP_ERROR,
                message: "no",
                receiver_version: None,
                app_code: Some("quota"),
            },
        },
        Message {
            crdt: CrdtType::Yjs,
            room: "r",
            body: Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BatchId([1; 8]) },
        },
        Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::FragmentHeader { batch_id: BatchId([2; 8]), fragment_count: 3, total_size: 700_000 },
        },
        Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::Fragment { batch_id: BatchId([2; 8]), index: 1, data: &data },
        },
        Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::RoomError { code: RoomErrorCode::EVICTED, message: "bye" },
        },
        Message { crdt: CrdtType::Loro, room: "r", body: Body::Leave },
        Message { crdt: CrdtType::Loro, room: "r", body: Body::Ack { ref_id: BatchId([1; 8]), status: AckStatus::OK } },
    ];
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    for m in &messages {
        out.clear();
        let (n, written) = allocations(|| m.encode_into_vec(black_box(&mut out)).expect("valid"));
        assert_eq!(n, 0, "encode_into_vec with enough capacity allocated ({:?})", m.message_type());
        assert_eq!(written, m.encoded_len());
        assert_eq!(Message::decode(&out).expect("decodes"), *m);
    }
    // Appending several frames into one reserved buffer: still nothing.
    out.clear();
    let total: usize = messages.iter().map(Message::encoded_len).sum();
    out.reserve(total);
    let (n, _) = allocations(|| {
        for m in &messages {
            m.encode_into_vec(&mut out).expect("valid");
        }
    });
    assert_eq!(n, 0);
    assert_eq!(out.len(), total);
}

#[test]
fn encode_to_bytes_allocates_once() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let frames: Vec<Vec<u8>> = GOLDEN.iter().map(|h| hex(h)).chain([many_updates(300)]).collect();
    for f in &frames {
        let m = Message::decode(f).expect("decodes");
        let (n, bytes) = allocations(|| m.encode_to_bytes().expect("valid"));
        assert_eq!(n, 1, "encode_to_bytes allocated {n} times");
        assert_eq!(&bytes[..], &f[..]);
        // Dropping it frees without allocating.
        let (n, ()) = allocations(|| drop(bytes));
        assert_eq!(n, 0);
    }
}
