//! PHI encryption at rest: a [`KeyRing`] of XChaCha20-Poly1305 keys and the
//! stored format of a PHI column value.
//!
//! A stored value (`bytea`) starts with a version byte:
//!
//! - `0`: plaintext (UTF-8) follows. Written only when the store has no key
//!   ring (encryption off); still read with a key ring, so a database written
//!   without encryption can be switched on and converted by
//!   [`PgStore::rotate_phi`](crate::PgStore::rotate_phi).
//! - `1`: `key id length (1 byte) ‖ key id ‖ 24-byte nonce ‖ ciphertext and
//!   16-byte tag`. The associated data binds the version, the key id, the
//!   tenant id, the table, the column and the appointment id (each
//!   length-prefixed), so a ciphertext copied to another row, column or
//!   tenant fails to decrypt.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use medsched_storage::{StorageError, StorageErrorKind};
use zeroize::Zeroizing;

/// The environment variable conventionally holding a key ring spec (see
/// [`KeyRing::parse`]); read by [`KeyRing::from_env`].
pub const KEYRING_ENV: &str = "MEDSCHED_PHI_KEYS";

const PLAINTEXT: u8 = 0;
const XCHACHA_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const AAD_DOMAIN: &[u8] = b"medsched-phi";

fn invalid(message: &str) -> StorageError {
    StorageError::new(StorageErrorKind::Invalid, message)
}

/// Whether `id` is a usable key id: 1 to 64 ASCII letters, digits, `-`,
/// `_` or `.` (it is stored in clear with every ciphertext).
fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The keys that encrypt PHI at rest: several 32-byte XChaCha20-Poly1305
/// keys by id, all readable, one active (new values are written with it).
/// Key material is zeroed on drop and never shown: `Debug` prints only the
/// key ids.
#[derive(Clone)]
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// A key ring of `keys` (id, 32-byte key) with `active_id` the key new
    /// values are encrypted with. Key ids are 1 to 64 ASCII letters,
    /// digits, `-`, `_` or `.`.
    ///
    /// # Errors
    /// `Invalid` when a key id is malformed or repeated, or `active_id` is
    /// not among the keys.
    pub fn new(
        active_id: &str,
        keys: impl IntoIterator<Item = (String, [u8; 32])>,
    ) -> Result<Self, StorageError> {
        let mut map = BTreeMap::new();
        for (id, key) in keys {
            let key = Zeroizing::new(key);
            if !valid_key_id(&id) {
                return Err(invalid(
                    "a key id must be 1 to 64 ascii letters, digits, '-', '_' or '.'",
                ));
            }
            if map.insert(id, key).is_some() {
                return Err(invalid("a key id appears twice in the key ring"));
            }
        }
        if !map.contains_key(active_id) {
            return Err(invalid("the active key id is not in the key ring"));
        }
        Ok(Self {
            active: active_id.to_owned(),
            keys: map,
        })
    }

    /// Parses a key ring spec: comma-separated `id:key` entries, each key
    /// 32 bytes in standard base64 (with or without padding), the first
    /// entry the active key; whitespace around entries is ignored. For
    /// example `k2026:<base64>,k2025:<base64>` writes with `k2026` and
    /// still reads values written with `k2025`.
    ///
    /// # Errors
    /// `Invalid` for an empty spec, a malformed entry, a key that is not 32
    /// bytes of base64, or a repeated id. The message never holds key
    /// material.
    pub fn parse(spec: &str) -> Result<Self, StorageError> {
        let mut keys = Vec::new();
        let mut active = None;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| invalid("a key ring entry must be id:base64key"))?;
            let (id, encoded) = (id.trim(), encoded.trim());
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
                    .map_err(|_| invalid("a key ring key is not valid base64"))?,
            );
            let key: [u8; 32] = decoded
                .as_slice()
                .try_into()
                .map_err(|_| invalid("a key ring key must be 32 bytes"))?;
            active.get_or_insert_with(|| id.to_owned());
            keys.push((id.to_owned(), key));
        }
        let active = active.ok_or_else(|| invalid("the key ring spec is empty"))?;
        let ring = Self::new(&active, keys.iter().map(|(id, k)| (id.clone(), *k)));
        for (_, k) in &mut keys {
            zeroize::Zeroize::zeroize(k);
        }
        ring
    }

    /// The key ring in the environment variable `name` (format of
    /// [`KeyRing::parse`]; [`KEYRING_ENV`] is the conventional name).
    ///
    /// # Errors
    /// `Invalid` when the variable is unset, not unicode or malformed.
    pub fn from_env(name: &str) -> Result<Self, StorageError> {
        let spec = Zeroizing::new(
            std::env::var(name)
                .map_err(|_| invalid("the key ring environment variable is not set"))?,
        );
        Self::parse(&spec)
    }

    /// The id of the active key.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// The ids of every key, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn cipher(&self, id: &str) -> Option<XChaCha20Poly1305> {
        self.keys
            .get(id)
            .map(|k| XChaCha20Poly1305::new(&Key::from(**k)))
    }
}

/// Where a PHI value lives: bound into its associated data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhiSlot<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) table: &'a str,
    pub(crate) column: &'a str,
    pub(crate) row_id: &'a str,
}

impl PhiSlot<'_> {
    fn aad(&self, version: u8, key_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        let mut part = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(bytes);
        };
        part(AAD_DOMAIN);
        part(&[version]);
        part(key_id.as_bytes());
        part(self.tenant.as_bytes());
        part(self.table.as_bytes());
        part(self.column.as_bytes());
        part(self.row_id.as_bytes());
        aad
    }

    fn integrity(&self, why: &str) -> StorageError {
        StorageError::new(
            StorageErrorKind::Integrity,
            format!(
                "{} of appointment `{}` cannot be decrypted: {why}",
                self.column, self.row_id
            ),
        )
    }
}

/// The key id of a stored value (`None` for plaintext or unreadable).
#[cfg(test)]
fn stored_key_id(stored: &[u8]) -> Option<&str> {
    let (&version, rest) = stored.split_first()?;
    if version != XCHACHA_V1 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let id = rest.get(..usize::from(len))?;
    std::str::from_utf8(id).ok()
}

/// Encodes a PHI value for storage: encrypted with the active key, or as
/// plaintext (version 0) without a key ring.
pub(crate) fn seal(
    ring: Option<&KeyRing>,
    slot: &PhiSlot<'_>,
    plaintext: &str,
) -> Result<Vec<u8>, StorageError> {
    let Some(ring) = ring else {
        let mut out = Vec::with_capacity(plaintext.len() + 1);
        out.push(PLAINTEXT);
        out.extend_from_slice(plaintext.as_bytes());
        return Ok(out);
    };
    let id = ring.active.as_str();
    let cipher = ring
        .cipher(id)
        .ok_or_else(|| invalid("the active key is missing from the key ring"))?;
    let id_len = u8::try_from(id.len()).map_err(|_| invalid("key id too long"))?;
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.try_fill_bytes(&mut nonce).map_err(|_| {
        StorageError::new(
            StorageErrorKind::Unavailable,
            "the operating system random source failed",
        )
    })?;
    let aad = slot.aad(XCHACHA_V1, id);
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| invalid("phi value cannot be encrypted"))?;
    let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ciphertext.len());
    out.push(XCHACHA_V1);
    out.push(id_len);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decodes a stored PHI value.
///
/// # Errors
/// `Integrity` (naming the appointment, never the content) for an unknown
/// version or key id, a failed tag, a truncated value, or a ciphertext read
/// without a key ring.
pub(crate) fn open(
    ring: Option<&KeyRing>,
    slot: &PhiSlot<'_>,
    stored: &[u8],
) -> Result<String, StorageError> {
    let (&version, rest) = stored
        .split_first()
        .ok_or_else(|| slot.integrity("empty value"))?;
    match version {
        PLAINTEXT => String::from_utf8(rest.to_vec()).map_err(|_| slot.integrity("not utf-8")),
        XCHACHA_V1 => {
            let ring = ring.ok_or_else(|| slot.integrity("no key ring is configured"))?;
            let (&len, rest) = rest
                .split_first()
                .ok_or_else(|| slot.integrity("truncated value"))?;
            let (id, rest) = rest
                .split_at_checked(usize::from(len))
                .ok_or_else(|| slot.integrity("truncated value"))?;
            let id = std::str::from_utf8(id).map_err(|_| slot.integrity("malformed key id"))?;
            let (nonce, ciphertext) = rest
                .split_at_checked(NONCE_LEN)
                .ok_or_else(|| slot.integrity("truncated value"))?;
            let nonce: [u8; NONCE_LEN] = nonce
                .try_into()
                .map_err(|_| slot.integrity("truncated value"))?;
            let cipher = ring
                .cipher(id)
                .ok_or_else(|| slot.integrity("unknown key id"))?;
            let aad = slot.aad(XCHACHA_V1, id);
            let plain = Zeroizing::new(
                cipher
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| slot.integrity("authentication failed"))?,
            );
            String::from_utf8(plain.to_vec()).map_err(|_| slot.integrity("not utf-8"))
        }
        _ => Err(slot.integrity("unknown format version")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn slot<'a>(tenant: &'a str, row: &'a str) -> PhiSlot<'a> {
        PhiSlot {
            tenant,
            table: "appointments",
            column: "reason",
            row_id: row,
        }
    }

    #[test]
    fn round_trip_binding_and_debug() {
        let ring = KeyRing::new("a", [("a".to_owned(), [7u8; 32])]).unwrap();
        let s = seal(Some(&ring), &slot("t", "r1"), "secret").unwrap();
        assert_eq!(stored_key_id(&s), Some("a"));
        assert_eq!(open(Some(&ring), &slot("t", "r1"), &s).unwrap(), "secret");
        let e = open(Some(&ring), &slot("t", "r2"), &s).unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::Integrity);
        assert!(open(Some(&ring), &slot("u", "r1"), &s).is_err());
        let mut flipped = s.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open(Some(&ring), &slot("t", "r1"), &flipped).is_err());
        assert!(open(None, &slot("t", "r1"), &s).is_err());
        let plain = seal(None, &slot("t", "r1"), "x").unwrap();
        assert_eq!(plain, b"\0x");
        let dbg = format!("{ring:?}");
        assert!(!dbg.contains("7,") && dbg.contains("\"a\""), "{dbg}");
    }

    #[test]
    fn parse_spec() {
        let k1 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let k2 = base64::engine::general_purpose::STANDARD_NO_PAD.encode([2u8; 32]);
        let ring = KeyRing::parse(&format!(" new:{k1} , old:{k2}")).unwrap();
        assert_eq!(ring.active_id(), "new");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["new", "old"]);
        assert!(!format!("{ring:?}").contains(&k1));
        assert!(KeyRing::parse("").is_err());
        assert!(KeyRing::parse("a:AAAA").is_err());
        assert!(KeyRing::parse(&format!("a:{k1},a:{k2}")).is_err());
        assert!(KeyRing::parse(&format!("bad id:{k1}")).is_err());
        assert!(KeyRing::new("x", [("a".to_owned(), [0u8; 32])]).is_err());
    }
}
