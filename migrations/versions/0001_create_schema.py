"""Create the tables that feed the snapshot: users, groups, providers, aliases, keys.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SNAPSHOT_TABLES = (
    "users",
    "groups",
    "group_members",
    "providers",
    "aliases",
    "deployments",
    "group_aliases",
    "virtual_keys",
    "rate_limits",
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL CONSTRAINT users_name_key UNIQUE,
            role        text NOT NULL DEFAULT 'member'
                        CONSTRAINT users_role_check CHECK (role IN ('admin', 'auditor', 'member')),
            source      text NOT NULL DEFAULT 'cli' CHECK (source IN ('cli', 'config')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE groups (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL CONSTRAINT groups_name_key UNIQUE,
            source      text NOT NULL DEFAULT 'cli' CHECK (source IN ('cli', 'config')),
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE group_members (
            group_id    bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, user_id)
        );

        -- credential holds nonce || AES-GCM ciphertext, never the clear text.
        -- api_version is Azure's api-version or Anthropic's anthropic-version.
        CREATE TABLE providers (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL CONSTRAINT providers_name_key UNIQUE,
            kind        text NOT NULL CONSTRAINT providers_kind_check
                        CHECK (kind IN ('openai', 'openai-compatible', 'anthropic', 'azure')),
            base_url    text NOT NULL,
            credential  bytea,
            headers     jsonb NOT NULL DEFAULT '{}'::jsonb,
            api_version text,
            enabled     boolean NOT NULL DEFAULT true,
            source      text NOT NULL DEFAULT 'cli' CHECK (source IN ('cli', 'config')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE aliases (
            id            bigserial PRIMARY KEY,
            name          text NOT NULL CONSTRAINT aliases_name_key UNIQUE,
            strategy      text NOT NULL DEFAULT 'weighted'
                          CONSTRAINT aliases_strategy_check CHECK (strategy IN ('weighted', 'least-busy')),
            fallbacks     text[] NOT NULL DEFAULT '{}',
            max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
            retry_on      integer[] NOT NULL DEFAULT '{429,500,502,503,504}',
            log_bodies    text CHECK (log_bodies IN ('full', 'metadata', 'none')),
            source        text NOT NULL DEFAULT 'cli' CHECK (source IN ('cli', 'config')),
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now()
        );

        -- Timeouts are in seconds. timeout_seconds bounds the wait for the first
        -- response byte and for each later chunk, never the whole response.
        CREATE TABLE deployments (
            id                      bigserial PRIMARY KEY,
            alias_id                bigint NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
            provider_id             bigint NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
            upstream_model          text NOT NULL,
            weight                  integer NOT NULL DEFAULT 1
                                    CONSTRAINT deployments_weight_check CHECK (weight >= 0),
            timeout_seconds         double precision NOT NULL DEFAULT 600
                                    CHECK (timeout_seconds > 0),
            connect_timeout_seconds double precision NOT NULL DEFAULT 10
                                    CHECK (connect_timeout_seconds > 0),
            position                integer NOT NULL DEFAULT 0,
            CONSTRAINT deployments_alias_provider_model_key UNIQUE (alias_id, provider_id, upstream_model)
        );
        CREATE INDEX deployments_provider_id_idx ON deployments (provider_id);

        CREATE TABLE group_aliases (
            group_id    bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            alias_id    bigint NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, alias_id)
        );

        -- hash is SHA-256 of the whole key; the key itself is never stored.
        -- During a rotation's grace period, previous_hash stays valid until
        -- previous_expires_at.
        CREATE TABLE virtual_keys (
            id                   bigserial PRIMARY KEY,
            user_id              bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            name                 text NOT NULL,
            prefix               text NOT NULL,
            hash                 bytea NOT NULL CONSTRAINT virtual_keys_hash_key UNIQUE,
            allowed_aliases      text[],
            log_bodies           text CHECK (log_bodies IN ('full', 'metadata', 'none')),
            expires_at           timestamptz,
            revoked_at           timestamptz,
            previous_hash        bytea,
            previous_expires_at  timestamptz,
            created_at           timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT virtual_keys_user_name_key UNIQUE (user_id, name)
        );

        -- One row sets the limits of exactly one subject: a user, a key or an alias.
        CREATE TABLE rate_limits (
            id                   bigserial PRIMARY KEY,
            user_id              bigint REFERENCES users (id) ON DELETE CASCADE,
            virtual_key_id       bigint REFERENCES virtual_keys (id) ON DELETE CASCADE,
            alias_id             bigint REFERENCES aliases (id) ON DELETE CASCADE,
            requests_per_minute  integer CHECK (requests_per_minute > 0),
            tokens_per_minute    integer CHECK (tokens_per_minute > 0),
            CONSTRAINT rate_limits_one_subject_check
                CHECK (num_nonnulls(user_id, virtual_key_id, alias_id) = 1),
            CONSTRAINT rate_limits_user_key UNIQUE (user_id),
            CONSTRAINT rate_limits_virtual_key_key UNIQUE (virtual_key_id),
            CONSTRAINT rate_limits_alias_key UNIQUE (alias_id)
        );

        -- Every change to a table that feeds the snapshot wakes the serve
        -- workers. Postgres folds identical notifications of one transaction
        -- into one, and the workers coalesce bursts further.
        CREATE FUNCTION weir_notify_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('weir_snapshot', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$;
        """
    )
    for table in SNAPSHOT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_snapshot "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION weir_notify_snapshot()"
        )


def downgrade() -> None:
    for table in reversed(SNAPSHOT_TABLES):
        op.execute(f"DROP TABLE {table} CASCADE")
    op.execute("DROP FUNCTION weir_notify_snapshot()")
