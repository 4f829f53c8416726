//! A `CryptoRng` that hands out fixed bytes, so a test can reproduce a known IV through the normal seal path.
//! Test-only: a real sealer must draw IVs from a cryptographically secure generator.
#![allow(dead_code)]

/// Fills every request from the start of the held bytes.
pub struct FixedIv(pub Vec<u8>);

impl rand_core::TryRng for FixedIv {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.copy_from_slice(&self.0[..dst.len()]);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedIv {}
