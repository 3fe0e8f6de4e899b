-- PHI columns hold bytes: a version byte, then either plaintext (version 0,
-- written when the store has no key ring) or an XChaCha20-Poly1305
-- ciphertext with its key id and nonce (version 1; see src/crypto.rs).
-- Existing text values become version-0 plaintext in place, so a database
-- written before this migration stays readable; PgStore::rotate_phi then
-- encrypts them under the active key.
ALTER TABLE medsched.appointments
    ALTER COLUMN reason TYPE bytea
        USING CASE WHEN reason IS NULL THEN NULL
                   ELSE '\x00'::bytea || convert_to(reason, 'UTF8') END,
    ALTER COLUMN notes TYPE bytea
        USING CASE WHEN notes IS NULL THEN NULL
                   ELSE '\x00'::bytea || convert_to(notes, 'UTF8') END,
    -- The key the row's PHI is encrypted with (NULL: plaintext or no PHI).
    -- Only a rotation index: decryption reads the key id of each value.
    ADD COLUMN phi_key text;
-- Never compress PHI in TOAST (ciphertext does not compress anyway, and
-- plaintext of an unencrypted store stays byte-scannable).
ALTER TABLE medsched.appointments
    ALTER COLUMN reason SET STORAGE EXTERNAL,
    ALTER COLUMN notes SET STORAGE EXTERNAL;
