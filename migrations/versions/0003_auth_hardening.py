"""Auth hardening: tenants namespaced by token issuer, a key revocation epoch, shared per-tenant rate limits.

- `tenants.issuer`: the identity provider that vouches for a tenant named by a JWT claim (NULL for tenants
  of API keys and the default tenant). A name is unique per issuer, so a token cannot land in an API-key
  tenant or another issuer's tenant by naming it.
- `auth_state.revocation_epoch`: one counter that every key revocation bumps; containers re-read it every
  few seconds and drop their cache of verified keys when it moves.
- `rate_limits`: one token bucket per tenant, shared by every container (they lease tokens in batches).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE tenants ADD COLUMN issuer text CHECK (length(issuer) BETWEEN 1 AND 2000);
    ALTER TABLE tenants DROP CONSTRAINT tenants_name_key;
    ALTER TABLE tenants ADD CONSTRAINT tenants_issuer_name_key UNIQUE NULLS NOT DISTINCT (issuer, name);

    CREATE TABLE auth_state (
        id               boolean PRIMARY KEY DEFAULT true CHECK (id),
        revocation_epoch bigint NOT NULL DEFAULT 0
    );
    INSERT INTO auth_state DEFAULT VALUES;

    CREATE TABLE rate_limits (
        tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        tokens     double precision NOT NULL,     -- left in the bucket at updated_at
        updated_at timestamptz NOT NULL,
        last_grant integer NOT NULL DEFAULT 0     -- tokens the last lease took (what it returns)
    );
    """)


def downgrade() -> None:
    # Two issuers' tenants of the same name cannot both keep it under the old unique name: refuse.
    op.execute("""
    DO $$
    BEGIN
        IF EXISTS (SELECT 1 FROM tenants GROUP BY name HAVING count(*) > 1) THEN
            RAISE EXCEPTION 'tenants of different issuers share a name; rename them before downgrading';
        END IF;
    END $$;
    DROP TABLE rate_limits;
    DROP TABLE auth_state;
    ALTER TABLE tenants DROP CONSTRAINT tenants_issuer_name_key;
    ALTER TABLE tenants DROP COLUMN issuer;
    ALTER TABLE tenants ADD CONSTRAINT tenants_name_key UNIQUE (name);
    """)
