-- Accounts, their postal addresses, login sessions and password-reset
-- tokens. No secret is stored in clear: a password as a self-describing
-- scrypt string ($scrypt$ln=..,r=..,p=..$salt$hash), a refresh or reset
-- token only as the SHA-256 of its text. The CHECKs are the last line of
-- defence behind the validation of handlers.c and users.c.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    -- stored lower-cased (the handlers pass lower($1)), so the UNIQUE is
    -- case-insensitive
    email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL CHECK (password_hash LIKE '$scrypt$%'),
    first_name text NOT NULL,
    last_name text NOT NULL,
    -- every account has USER; ADMIN passes every access check
    roles text[] NOT NULL DEFAULT '{USER}'
        CHECK (roles <@ ARRAY['USER', 'ADMIN']::text[] AND 'USER' = ANY (roles)),
    status text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DEACTIVATED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ListUsers pages oldest first.
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE addresses (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    street text NOT NULL,
    city text NOT NULL,
    state text NOT NULL DEFAULT '',
    zip_code text NOT NULL,
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX addresses_user ON addresses (user_id, created_at);
-- At most one default address per user (users.c keeps exactly one when
-- the user has any).
CREATE UNIQUE INDEX addresses_one_default ON addresses (user_id) WHERE is_default;

-- One row per refresh token. A login opens a session family (family_id:
-- the `sid` claim of the access tokens it yields). Each refresh adds a row
-- to the family and points the used row at it (replaced_by, used_at); a
-- row already replaced that is presented again is reuse, and revokes the
-- whole family. Logout, deactivation and a password reset set revoked_at.
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    family_id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    refresh_hash bytea NOT NULL UNIQUE CHECK (length(refresh_hash) = 32),
    generation integer NOT NULL DEFAULT 1 CHECK (generation >= 1),
    replaced_by uuid REFERENCES sessions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX sessions_family ON sessions (family_id);
CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;

-- Single-use password-reset tokens, valid 30 minutes. used_at is also set
-- on the tokens a newer request, or a completed reset, supersedes.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

CREATE INDEX password_resets_user_open ON password_resets (user_id) WHERE used_at IS NULL;
