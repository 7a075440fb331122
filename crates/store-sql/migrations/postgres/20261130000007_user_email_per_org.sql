-- E-mail addresses are unique per organization, not across the installation:
-- one tenant can neither learn that an address exists in another nor squat it.
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE users ADD CONSTRAINT users_org_email_key UNIQUE (org_id, email);
CREATE INDEX users_email ON users(email);
