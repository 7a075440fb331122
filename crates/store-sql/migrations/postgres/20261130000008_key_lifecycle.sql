-- Signing-key lifecycle: when a key became active (scheduled rotation counts
-- from there) and when it stopped signing (it leaves the JWKS once every token
-- it signed has expired; a revoked key at once). Keys retired before this
-- migration count as retired now. One `next` key per algorithm at most, so
-- instances preparing a rotation at once cannot make two.
ALTER TABLE signing_keys ADD COLUMN activated_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retired_at BIGINT;
UPDATE signing_keys SET activated_at = created_at WHERE state <> 'next';
UPDATE signing_keys SET retired_at = EXTRACT(EPOCH FROM now())::BIGINT WHERE state = 'retired';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(alg) WHERE state = 'next';
