//! Canonical LEB128, written independently of the crate so the tests can build frames by hand.
#![allow(dead_code)]

/// Appends the canonical LEB128 encoding of `v` to `out`.
pub fn push_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The canonical LEB128 encoding of `v`.
pub fn leb(v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    push_leb(&mut out, v);
    out
}
