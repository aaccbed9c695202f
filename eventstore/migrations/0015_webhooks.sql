-- Webhooks out: the subscriptions of the systems around, and every delivery attempt.
--
-- A subscription is a URL, a filter (case kinds, event types, bodies; NULL: no filter of that kind) and the
-- principal that owns it, whose scope the events it receives are held to (an intake system: the cases it sent).
-- Its signing secret (`whsec_...`, shown once) is kept AES-256-GCM encrypted under a key derived from the
-- installation's secret (`api.subscriptions`), the subscription id as associated data. `revision` goes up on
-- every change of URL, filter or status, so that a delivery under way notices and stops. The delivery workflow
-- (`workflows.subscription`) keeps the authoritative cursor; `delivered_*` repeat, about once a second, how far it
-- got, for the API to show without asking Temporal. (Once a second, not once an event: every update of a row
-- leaves a version behind that no vacuum may remove while an older snapshot runs anywhere on the server, and a row
-- updated thousands of times a minute is soon slow to reach.)
CREATE TABLE subscriptions (
    id                 text PRIMARY KEY CHECK (id ~ '^sub_[0-9a-z]{20}$'),
    url                text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    kinds              text[],
    types              text[],
    bodies             text[],
    owner_role         text NOT NULL CHECK (owner_role IN ('intake', 'admin')),
    owner_label        text NOT NULL,
    owner_token        text,          -- the first digits of the hash of the token that made it
    secret_nonce       bytea NOT NULL,
    secret_sealed      bytea NOT NULL,
    secret_key_id      text NOT NULL,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'failing')),
    status_reason      text,
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    revision           integer NOT NULL DEFAULT 1,
    delivered_count    bigint NOT NULL DEFAULT 0,
    delivered_tx       bigint,
    delivered_position bigint,
    delivered_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_owner_idx ON subscriptions (owner_role, owner_label, created_at DESC, id DESC);
CREATE INDEX subscriptions_created_idx ON subscriptions (created_at DESC, id DESC);

-- Every attempt to deliver an event: the HTTP status of the answer, or the error when there was none (refused
-- address, timeout, connection refused...), when it started and how long it took. A delivery activity that is
-- retried (its worker lost) goes on exactly after the last event it had delivered, found here by `delivered_by`.
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    case_id          text NOT NULL,
    event_type       text NOT NULL,
    attempt          integer NOT NULL CHECK (attempt >= 1),
    status_code      integer CHECK (status_code BETWEEN 100 AND 599),
    error            text,
    started_at       timestamptz NOT NULL,
    latency_ms       double precision NOT NULL CHECK (latency_ms >= 0),
    feed_tx          bigint NOT NULL,  -- the event's place in the feed
    feed_position    bigint NOT NULL,
    delivered_by     text NOT NULL,    -- the delivery activity (workflow run / activity id) that made the attempt
    CONSTRAINT deliveries_outcome CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);
CREATE INDEX deliveries_subscription_idx ON deliveries (subscription_id, id DESC);
CREATE INDEX deliveries_event_idx ON deliveries (subscription_id, event_id);
