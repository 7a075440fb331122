-- DPoP (RFC 9449): an app may be made to require proofs at the token endpoint,
-- and a refresh token issued with a proof is bound to the proof's key (the
-- RFC 7638 thumbprint); refreshing it takes a proof of the same key.
ALTER TABLE apps ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
