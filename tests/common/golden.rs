//! The 13 golden frames of Loro Protocol v1, copied from `../shared/vectors/loro-v1-golden.tsv` (byte-exact in the
//! official TypeScript and Rust test suites). Shared by the codec tests through `#[path]`.
#![allow(dead_code)]

/// `(name, hex)` of every golden frame, in the order of the shared TSV file.
pub const GOLDEN: [(&str, &str); 13] = [
    ("join_request", "254c4f5209726f6f6d2d3132333400030a141e0328323c"),
    ("join_ok_read", "25594a5309726f6f6d2d31323334010472656164030b162100"),
    ("join_ok_write", "254c4f5209726f6f6d2d3132333401057772697465022c3703424d58"),
    ("join_error_auth", "2545504809726f6f6d2d31323334020213496e76616c69642063726564656e7469616c73"),
    ("join_error_version", "254c4f5209726f6f6d2d3132333402011056657273696f6e206d69736d61746368026364"),
    (
        "join_error_app",
        "25594a5309726f6f6d2d31323334027f1a4170706c69636174696f6e207370656369666963206572726f720e71756f74615f6578636565646564",
    ),
    ("doc_update", "25594a5309726f6f6d2d31323334030303010203040405060701080102030405060708"),
    ("fragment_header", "254c4f5209726f6f6d2d3132333404ff112233445566770a80c03e"),
    (
        "fragment",
        "254c4f5209726f6f6d2d313233340500000000000000000320000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    ),
    ("room_error", "254c4f5209726f6f6d2d3132333406020765766963746564"),
    ("ack_ok", "254c4f5209726f6f6d2d3132333408010203040506070800"),
    ("ack_fragment_timeout", "2559415709726f6f6d2d3132333408010000000000000007"),
    ("leave", "254c4f5209726f6f6d2d3132333407"),
];

/// The frames' hex strings, in order.
pub const GOLDEN_HEX: [&str; 13] = {
    let mut out = [""; 13];
    let mut i = 0;
    while i < 13 {
        out[i] = GOLDEN[i].1;
        i += 1;
    }
    out
};

/// Decodes a hex string (test data only).
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}
