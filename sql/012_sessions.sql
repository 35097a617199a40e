-- Dashboard sessions live here, so logout and token rotation end them on every copy. The
-- cookie is a random id; only its sha256 is stored (a database read yields no usable cookie).
-- `token_fp` fingerprints the token secret the session was opened with: a session whose token
-- was rotated or removed no longer matches any current token and is refused.
CREATE TABLE tori_sessions (
    id          bytea PRIMARY KEY,
    name        text NOT NULL,
    token_fp    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX tori_sessions_expires_idx ON tori_sessions (expires_at);
