-- Whether a sign-in through the organization's identity provider counts as
-- multi-factor when the provider's ID token says it was (its `amr`): then a
-- role's or the organization's second-factor requirement is met there.
ALTER TABLE upstream_providers ADD COLUMN trust_upstream_mfa BOOLEAN NOT NULL DEFAULT FALSE;
