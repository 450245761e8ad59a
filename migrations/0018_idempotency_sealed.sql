-- Idempotency-Key answers that carry a secret (a new API key) are never
-- stored in plaintext (docs/API.md "Idempotency"): the ingress seals them
-- with AES-256-GCM (response_sealed: format, key id, nonce, ciphertext,
-- tag; bound to account_id and key) or, with no encryption key configured,
-- stores them without the secret (secret_withheld) and answers a replay
-- 409 idempotency_reply_withheld.
ALTER TABLE idempotency_keys
    ADD COLUMN response_sealed bytea
        CHECK (response_sealed IS NULL OR octet_length(response_sealed) > 30),
    ADD COLUMN secret_withheld boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT idempotency_keys_one_body_check
        CHECK (response_body IS NULL OR response_sealed IS NULL);

COMMENT ON COLUMN idempotency_keys.response_sealed IS
    'The first answer sealed with AES-256-GCM (vox_crypto) when it carries a secret; response_body is then NULL.';
COMMENT ON COLUMN idempotency_keys.secret_withheld IS
    'response_body is the first answer without its secret: a replay answers 409 idempotency_reply_withheld.';
COMMENT ON COLUMN idempotency_keys.request_hash IS
    'SHA-256 over method, path and the body as canonical JSON (sorted keys, no whitespace; raw bytes when not JSON).';

-- Answers stored before this migration still hold new API keys in
-- plaintext: keep them without the secret.
UPDATE idempotency_keys
SET response_body = (response_body::jsonb - 'key')::text,
    secret_withheld = true
WHERE method = 'POST' AND path = '/v1/api-keys'
  AND status_code BETWEEN 200 AND 299
  AND response_body IS NOT NULL;
