//! Sealing and opening records with AES-GCM (128- or 256-bit keys, 96-bit IV, 128-bit tag).
//!
//! * The AAD is the record header exactly as written, from the kind byte through the IV including the IV's
//!   length byte ([`Record::aad`]).
//! * The IV is 12 bytes drawn from the caller's [`TryCryptoRng`] for every record. There is no default IV and no
//!   way to pass one in; an all-zero draw is treated as a broken generator ([`EloError::Rng`]).
//! * **Per-key limit.** With random 96-bit IVs, NIST SP 800-38D §8.3 caps the number of records sealed under one
//!   key at 2^32 ([`MAX_RECORDS_PER_KEY`](super::MAX_RECORDS_PER_KEY)); by then the chance that two records
//!   share an IV (which breaks both confidentiality and integrity under GCM) has reached about 2^-33. Rotate to a new key
//!   id well before that.
//! * Keys ([`EloKey`]) hold only the expanded AES and GHASH state, which is zeroized when dropped; the raw key
//!   bytes passed to the constructors stay the caller's to wipe.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Key, Nonce, Tag};
use bytes::Bytes;
use rand_core::TryCryptoRng;

use super::error::{EloError, EloField, KeyIdBuf};
use super::record::{Record, RecordHeader};
use super::{IV_LEN, TAG_LEN};
use crate::wire::reader::{put_varint, varint_len};

#[derive(Clone)]
enum Cipher {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

/// An AES-GCM key (128 or 256 bits), ready to seal and open records. Its expanded key state is zeroized on drop.
#[derive(Clone)]
pub struct EloKey(Cipher);

impl EloKey {
    /// A key from 16 (AES-128) or 32 (AES-256) raw bytes, the two sizes Web Crypto and the official TypeScript
    /// implementation accept.
    pub fn new(key: &[u8]) -> Result<Self, EloError> {
        // Borrowed conversions: no stack copy of the key bytes is left behind.
        if let Ok(k) = <&Key<Aes128Gcm>>::try_from(key) {
            return Ok(EloKey(Cipher::Aes128(Aes128Gcm::new(k))));
        }
        if let Ok(k) = <&Key<Aes256Gcm>>::try_from(key) {
            return Ok(EloKey(Cipher::Aes256(Aes256Gcm::new(k))));
        }
        Err(EloError::KeyLength { len: key.len() })
    }

    /// An AES-128-GCM key.
    pub fn aes128(key: &[u8; 16]) -> Self {
        EloKey(Cipher::Aes128(Aes128Gcm::new(key.into())))
    }

    /// An AES-256-GCM key.
    pub fn aes256(key: &[u8; 32]) -> Self {
        EloKey(Cipher::Aes256(Aes256Gcm::new(key.into())))
    }

    /// Key size in bits: 128 or 256.
    pub const fn bits(&self) -> u32 {
        match self.0 {
            Cipher::Aes128(_) => 128,
            Cipher::Aes256(_) => 256,
        }
    }

    fn encrypt(&self, iv: &[u8; IV_LEN], aad: &[u8], buf: InOutBuf<'_, '_, u8>) -> Result<Tag, aes_gcm::Error> {
        let nonce = Nonce::from(*iv);
        match &self.0 {
            Cipher::Aes128(c) => c.encrypt_inout_detached(&nonce, aad, buf),
            Cipher::Aes256(c) => c.encrypt_inout_detached(&nonce, aad, buf),
        }
    }

    fn decrypt(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        buf: InOutBuf<'_, '_, u8>,
        tag: &Tag,
    ) -> Result<(), aes_gcm::Error> {
        let nonce = Nonce::from(*iv);
        match &self.0 {
            Cipher::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, buf, tag),
            Cipher::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, buf, tag),
        }
    }
}

/// Both ciphers clear their expanded key state when dropped (the `zeroize` feature of `aes-gcm`); this fails to
/// compile if that ever stops being true.
const _: fn() = || {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<Aes128Gcm>();
    zeroized_on_drop::<Aes256Gcm>();
};

impl zeroize::ZeroizeOnDrop for EloKey {}

impl fmt::Debug for EloKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EloKey(AES-{}-GCM, ..)", self.bits())
    }
}

/// Finds the key for a record's key id. The application implements it over its own key store; the spec leaves
/// key distribution and rotation to the application.
///
/// Returning `None` makes [`Record::open`] fail with [`EloError::UnknownKey`] naming the key id, so the caller can
/// fetch the key and retry.
pub trait KeyResolver {
    /// The key for `key_id`, if known.
    fn resolve(&self, key_id: &str) -> Option<&EloKey>;
}

impl<K: KeyResolver + ?Sized> KeyResolver for &K {
    fn resolve(&self, key_id: &str) -> Option<&EloKey> {
        (**self).resolve(key_id)
    }
}

/// A key store mapping key ids to keys.
impl KeyResolver for BTreeMap<String, EloKey> {
    fn resolve(&self, key_id: &str) -> Option<&EloKey> {
        self.get(key_id)
    }
}

/// A single key under one key id.
impl KeyResolver for (&str, &EloKey) {
    fn resolve(&self, key_id: &str) -> Option<&EloKey> {
        (self.0 == key_id).then_some(self.1)
    }
}

/// A single key under one key id.
impl KeyResolver for (&str, EloKey) {
    fn resolve(&self, key_id: &str) -> Option<&EloKey> {
        (self.0 == key_id).then_some(&self.1)
    }
}

/// The exact length of the record [`seal_into`] writes for `header` and a plaintext of `plaintext_len` bytes.
/// Validates the header.
pub fn sealed_len(header: &RecordHeader<'_>, plaintext_len: usize) -> Result<usize, EloError> {
    Ok(header.encoded_len()? + ct_field_len(plaintext_len)?)
}

/// Bytes the ciphertext field (length prefix, ciphertext, tag) takes for a plaintext of `plaintext_len` bytes.
fn ct_field_len(plaintext_len: usize) -> Result<usize, EloError> {
    let ct_len = plaintext_len
        .checked_add(TAG_LEN)
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or(EloError::TooLong { field: EloField::Ciphertext, len: plaintext_len })?;
    Ok(varint_len(ct_len as u64) + ct_len)
}

fn fresh_iv<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<[u8; IV_LEN], EloError> {
    let mut iv = [0u8; IV_LEN];
    rng.try_fill_bytes(&mut iv).map_err(|_| EloError::Rng)?;
    // 2^-96 for a working generator; a zero-filling one would repeat the IV on every record.
    if iv == [0u8; IV_LEN] {
        return Err(EloError::Rng);
    }
    Ok(iv)
}

/// Seals `plaintext` into a record written at the start of `out`, with a fresh IV from `rng`; returns the record
/// length ([`sealed_len`]). On error `out` is untouched. Never allocates.
///
/// The plaintext is encrypted straight from `plaintext` into `out` (one pass, no intermediate copy).
pub fn seal_into<R: TryCryptoRng + ?Sized>(
    header: &RecordHeader<'_>,
    key: &EloKey,
    plaintext: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, EloError> {
    let head_len = header.encoded_len()?;
    let total = head_len + ct_field_len(plaintext.len())?;
    let available = out.len();
    let out = out.get_mut(..total).ok_or(EloError::BufferTooSmall { required: total, available })?;
    let iv = fresh_iv(rng)?;
    let (head, rest) = out.split_at_mut(head_len);
    header.write(&iv, &mut &mut head[..]);
    let ct_len = plaintext.len() + TAG_LEN;
    let prefix = varint_len(ct_len as u64);
    let (len_dst, rest) = rest.split_at_mut(prefix);
    put_varint(&mut &mut len_dst[..], ct_len as u64);
    let (body, tag_dst) = rest.split_at_mut(plaintext.len());
    // Both slices have the plaintext's length, so `InOutBuf::new` cannot fail.
    let buf = InOutBuf::new(plaintext, body).map_err(|_| EloError::TooLong { field: EloField::Ciphertext, len: 0 })?;
    let tag = key
        .encrypt(&iv, head, buf)
        .map_err(|_| EloError::TooLong { field: EloField::Ciphertext, len: plaintext.len() })?;
    tag_dst.copy_from_slice(&tag);
    Ok(total)
}

/// Seals `plaintext` into a new, exactly sized record (one allocation).
pub fn seal<R: TryCryptoRng + ?Sized>(
    header: &RecordHeader<'_>,
    key: &EloKey,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, EloError> {
    let len = sealed_len(header, plaintext.len())?;
    let mut out = alloc::vec![0u8; len];
    seal_into(header, key, plaintext, rng, &mut out)?;
    Ok(out)
}

/// [`seal`] into a [`Bytes`].
pub fn seal_to_bytes<R: TryCryptoRng + ?Sized>(
    header: &RecordHeader<'_>,
    key: &EloKey,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Bytes, EloError> {
    seal(header, key, plaintext, rng).map(Bytes::from)
}

/// Parses `record` and opens it with the key its key id resolves to.
pub fn open<K: KeyResolver + ?Sized>(record: &[u8], keys: &K) -> Result<Vec<u8>, EloError> {
    Record::parse(record)?.open(keys)
}

impl Record<'_> {
    /// Decrypts and authenticates the record into the start of `out` (at least
    /// [`plaintext_len`](Self::plaintext_len) bytes) and returns the plaintext length. On failure nothing in
    /// `out` is left holding data. Never allocates.
    pub fn open_into<K: KeyResolver + ?Sized>(&self, keys: &K, out: &mut [u8]) -> Result<usize, EloError> {
        let key_id = self.key_id();
        let key = keys.resolve(key_id).ok_or_else(|| EloError::UnknownKey { key_id: KeyIdBuf::new(key_id) })?;
        let ct = self.ciphertext();
        let n = self.plaintext_len();
        let available = out.len();
        let out = out.get_mut(..n).ok_or(EloError::BufferTooSmall { required: n, available })?;
        let (body, tag) = ct.split_at(n);
        let auth_failed = || EloError::Authentication { key_id: KeyIdBuf::new(key_id) };
        let tag = Tag::try_from(tag).map_err(|_| auth_failed())?;
        let buf = InOutBuf::new(body, &mut *out).map_err(|_| auth_failed())?;
        if key.decrypt(self.iv(), self.aad(), buf, &tag).is_err() {
            out.fill(0);
            return Err(auth_failed());
        }
        Ok(n)
    }

    /// Decrypts and authenticates the record into a new, exactly sized buffer.
    pub fn open<K: KeyResolver + ?Sized>(&self, keys: &K) -> Result<Vec<u8>, EloError> {
        let mut out = alloc::vec![0u8; self.plaintext_len()];
        self.open_into(keys, &mut out)?;
        Ok(out)
    }
}
