"""Create `request_logs`, partitioned by day, and the functions that manage its partitions.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Advisory lock numbers ("WRLP", "WRLR" in ASCII): one serialises partition
# creation, the other lets a single process at a time drop old partitions.
PARTITION_LOCK_ID = 0x57524C50
RETENTION_LOCK_ID = 0x57524C52


def upgrade() -> None:
    op.execute(
        """
        -- One row per proxied request. There are no foreign keys: a record
        -- outlives the key, user or alias it names, so names and prefixes are
        -- copied in. Timings are in milliseconds. Bodies are set only when the
        -- request's body logging was `full`; response_text is the text a
        -- stream assembled from its deltas.
        CREATE TABLE request_logs (
            request_id          text NOT NULL,
            created_at          timestamptz NOT NULL,
            written_at          timestamptz NOT NULL DEFAULT now(),
            method              text NOT NULL,
            path                text NOT NULL,
            status              integer NOT NULL,
            error               text,
            virtual_key_id      bigint,
            key_prefix          text,
            user_id             bigint,
            user_name           text,
            alias               text,
            deployment          text,
            provider            text,
            stream              boolean NOT NULL DEFAULT false,
            cancelled           boolean NOT NULL DEFAULT false,
            attempts            integer NOT NULL DEFAULT 0,
            total_ms            double precision NOT NULL,
            ttfb_ms             double precision,
            overhead_ms         double precision,
            prompt_tokens       integer,
            completion_tokens   integer,
            total_tokens        integer,
            cached_tokens       integer,
            reasoning_tokens    integer,
            client_ip           text,
            user_agent          text,
            bodies              text NOT NULL CHECK (bodies IN ('full', 'metadata')),
            request_body        text,
            response_body       text,
            response_text       text,
            PRIMARY KEY (request_id, created_at)
        ) PARTITION BY RANGE (created_at);

        -- Every index is paid for on each request's insert. Queries always
        -- bound created_at (and each day is its own partition), so user and
        -- alias filters run on the created_at index; written_at serves
        -- `logs tail --follow`.
        CREATE INDEX request_logs_created_at_idx ON request_logs (created_at);
        CREATE INDEX request_logs_written_at_idx ON request_logs (written_at);
        """
    )
    op.execute(
        f"""
        -- Create the partition of one UTC day unless it exists. The lock
        -- makes concurrent callers wait instead of failing on a duplicate.
        CREATE FUNCTION weir_create_request_log_partition(day date) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock({PARTITION_LOCK_ID});
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
                'request_logs_' || to_char(day, 'YYYYMMDD'),
                day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'
            );
        END
        $$;

        -- Drop the partitions of days before `before` and return their names.
        -- When another process holds the retention lock, it is doing the same
        -- work, so this returns nothing instead of waiting.
        CREATE FUNCTION weir_drop_request_log_partitions(before date) RETURNS SETOF text
        LANGUAGE plpgsql AS $$
        DECLARE
            partition_name text;
        BEGIN
            IF NOT pg_try_advisory_xact_lock({RETENTION_LOCK_ID}) THEN
                RETURN;
            END IF;
            FOR partition_name IN
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'request_logs'::regclass
                  AND c.relname ~ '^request_logs_[0-9]{{8}}$'
                  AND to_date(substr(c.relname, 14), 'YYYYMMDD') < before
                ORDER BY c.relname
            LOOP
                EXECUTE format('DROP TABLE %I', partition_name);
                RETURN NEXT partition_name;
            END LOOP;
        END
        $$;

        SELECT weir_create_request_log_partition((now() AT TIME ZONE 'UTC')::date + offset_days)
        FROM generate_series(-1, 2) AS offset_days;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE request_logs")
    op.execute("DROP FUNCTION weir_drop_request_log_partitions(date)")
    op.execute("DROP FUNCTION weir_create_request_log_partition(date)")
