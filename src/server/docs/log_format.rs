//! The snapshot format of the built-in logs: `"LSL1"`, a varint count, then each update as var_bytes.
//! Parsed strictly (canonical varints, counts checked against remaining bytes, no trailing bytes).

use alloc::vec::Vec;

use bytes::Bytes;

use crate::server::doc::ImportError;
use crate::wire::bytes_of;
use crate::wire::reader::{put_var_bytes, put_varint, var_bytes_len, varint_len, Reader};

const MAGIC: &[u8; 4] = b"LSL1";

pub(crate) fn encode<'a>(updates: impl Iterator<Item = &'a Bytes> + Clone) -> Bytes {
    let count = updates.clone().count();
    let len = MAGIC.len() + varint_len(count as u64) + updates.clone().map(|u| var_bytes_len(u.len())).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    put_varint(&mut out, count as u64);
    for u in updates {
        put_var_bytes(&mut out, u);
    }
    Bytes::from(out)
}

/// Parses a snapshot, returning zero-copy slices of `snapshot`.
pub(crate) fn decode(snapshot: &Bytes) -> Result<Vec<Bytes>, ImportError> {
    let mut r = Reader::new(snapshot);
    if r.array::<4, _>(()).map_err(|_| ImportError)? != *MAGIC {
        return Err(ImportError);
    }
    let count = r.varint_u32(()).map_err(|_| ImportError)?;
    if count as usize > r.remaining() {
        return Err(ImportError);
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let u = r.var_bytes(()).map_err(|_| ImportError)?;
        out.push(bytes_of(snapshot, u));
    }
    if r.remaining() != 0 {
        return Err(ImportError);
    }
    Ok(out)
}
