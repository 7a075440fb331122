-- A second factor required of everyone holding the role (beside the
-- organization-wide `orgs.require_mfa`): e.g. the roles that carry `apps:manage`.
ALTER TABLE roles ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
