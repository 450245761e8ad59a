-- Carrier signing secrets are not kept in plaintext (docs/CARRIER_CDRS.md
-- "How secrets are stored"): the HMAC secret of signed CDR pushes cannot
-- be a hash, since the ingress must read it to check Vox-Signature, so
-- voxctl seals it with AES-256-GCM (vox_crypto, VOX_ENCRYPTION_KEY) bound
-- to its row ("carrier_credentials/<id>"). A deployment without a key
-- stores it in plaintext as before; `voxctl carrier seal` seals those rows
-- once a key is set, and re-seals rows sealed with a retired key.
-- Exactly one of the two columns holds the secret.
ALTER TABLE carrier_credentials
    ALTER COLUMN signing_secret DROP NOT NULL,
    ADD COLUMN signing_secret_sealed bytea
        -- format, key id, nonce, tag (30 bytes) and at least 16 bytes
        CHECK (octet_length(signing_secret_sealed) >= 46),
    ADD CONSTRAINT carrier_credentials_one_secret_check
        CHECK ((signing_secret IS NULL) <> (signing_secret_sealed IS NULL));

COMMENT ON COLUMN carrier_credentials.signing_secret IS
    'The HMAC secret of signed CDR pushes in plaintext, only where no VOX_ENCRYPTION_KEY was set; NULL when signing_secret_sealed holds it.';
COMMENT ON COLUMN carrier_credentials.signing_secret_sealed IS
    'The signing secret sealed with AES-256-GCM (vox_crypto: format, key id, nonce, ciphertext, tag), bound to "carrier_credentials/<id>".';
