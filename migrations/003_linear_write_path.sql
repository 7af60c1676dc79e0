-- The first pgchat_post_messages joined the inserted rows back to their input
-- through CTEs the planner could not size; it chose nested loops, so a flush of
-- n messages cost O(n^2) (about 120 us per message at n = 500, all of it while
-- holding the room's row lock). This version makes one linear pass: classify
-- (index lookups), bump each room once, number the messages in input order in
-- PL/pgSQL arrays, take ids from the identity sequence up front, insert from
-- the arrays, and build the bodies from the same arrays: no join back at all.

-- The one JSON shape of a message object, from plain values (used by the write
-- path before the row exists, and by every read through the row version below).
-- Plain concatenation with to_json() for the strings: row_to_json per row cost
-- more than the insert itself. STABLE (to_json, to_char) so PostgreSQL inlines it.
CREATE FUNCTION pgchat_message_json(
  p_id bigint, p_seq bigint, p_room uuid, p_user uuid, p_username text,
  p_content text, p_created_at timestamptz, p_client_msg_id text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"id":' || p_id || ',"seq":' || p_seq || ',"room_id":"' || p_room || '","user_id":"' || p_user
         || '","username":' || to_json(p_username)::text || ',"content":' || to_json(p_content)::text
         || ',"created_at":"' || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"'
         || CASE WHEN p_client_msg_id IS NULL THEN '' ELSE ',"client_msg_id":' || to_json(p_client_msg_id)::text END
         || '}'
$$;

CREATE OR REPLACE FUNCTION pgchat_message_json(m messages, username text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT pgchat_message_json(m.id, m.seq, m.room_id, m.user_id, username, m.content, m.created_at, m.client_msg_id)
$$;

-- Every index on messages is paid on every insert, under the room lock. No query
-- looks messages up by id (ids come from the identity sequence, unique by
-- construction) and users are never deleted through the API (a manual delete
-- still cascades, with a scan), so these two go.
DROP INDEX messages_id_key;
DROP INDEX messages_user_idx;

CREATE OR REPLACE FUNCTION pgchat_post_messages(
  p_room uuid[], p_user uuid[], p_username text[], p_content text[], p_cmid text[],
  p_channel text, p_budget integer)
RETURNS TABLE (ord integer, status text, id bigint, seq bigint, created_at text)
LANGUAGE plpgsql AS $$
DECLARE
  n integer := coalesce(array_length(p_room, 1), 0);
  v_now timestamptz := now();
  v_status text[];
  v_id bigint[];
  v_seq bigint[];
  v_at timestamptz[];
  v_first integer[];
  v_rooms uuid[];
  v_next bigint[];
  v_ids bigint[];
  v_fresh integer;
  i integer;
  j integer;
  k integer := 0;
  r record;
  acc_kind char := '';
  acc_room uuid;
  acc_first bigint;
  acc_last bigint;
  acc_body text := '';
  acc_bytes integer := 0;
BEGIN
  IF n = 0 THEN RETURN; END IF;

  -- Lock the rooms in one order so concurrent flushes of other workers cannot deadlock.
  PERFORM 1 FROM rooms WHERE rooms.id = ANY (p_room) ORDER BY rooms.id FOR UPDATE;

  -- Classify every item: unknown room, not a member, seen client_msg_id (stored
  -- before, or earlier in this batch), or fresh.
  SELECT array_agg(CASE WHEN rm.id IS NULL THEN 'room_not_found'
                        WHEN mb.user_id IS NULL THEN 'not_a_member'
                        WHEN e.id IS NOT NULL OR x.first_ord <> x.ord THEN 'duplicate'
                        ELSE 'ok' END ORDER BY x.ord),
         array_agg(e.id ORDER BY x.ord),
         array_agg(e.seq ORDER BY x.ord),
         array_agg(e.created_at ORDER BY x.ord),
         array_agg(x.first_ord ORDER BY x.ord)
    INTO v_status, v_id, v_seq, v_at, v_first
  FROM (
    SELECT i.ord::integer AS ord, i.room_id, i.user_id, i.cmid,
           CASE WHEN i.cmid IS NULL THEN i.ord::integer
                ELSE (min(i.ord) OVER (PARTITION BY i.room_id, i.user_id, i.cmid))::integer END AS first_ord
    FROM unnest(p_room, p_user, p_cmid) WITH ORDINALITY AS i (room_id, user_id, cmid, ord)
  ) x
  LEFT JOIN rooms rm ON rm.id = x.room_id
  LEFT JOIN room_members mb ON mb.room_id = x.room_id AND mb.user_id = x.user_id
  LEFT JOIN messages e ON x.cmid IS NOT NULL AND e.room_id = x.room_id
                      AND e.user_id = x.user_id AND e.client_msg_id = x.cmid;

  -- One bump per room: its messages get last_seq + 1 .. last_seq + count.
  WITH counts AS (
    SELECT u.room_id, count(*) AS c
    FROM unnest(p_room, v_status) AS u (room_id, st) WHERE u.st = 'ok' GROUP BY u.room_id
  ), bumped AS (
    UPDATE rooms SET last_seq = rooms.last_seq + counts.c FROM counts WHERE rooms.id = counts.room_id
    RETURNING rooms.id, rooms.last_seq - counts.c AS base
  )
  SELECT array_agg(bumped.id), array_agg(bumped.base), coalesce(sum(c.c), 0)::integer
    INTO v_rooms, v_next, v_fresh
  FROM bumped JOIN counts c ON c.room_id = bumped.id;

  IF v_fresh > 0 THEN
    SELECT array_agg(nextval('messages_id_seq')) INTO v_ids FROM generate_series(1, v_fresh);
    -- Seqs in input order per room (keeps each sender's order); ids likewise.
    FOR i IN 1 .. n LOOP
      IF v_status[i] = 'ok' THEN
        j := array_position(v_rooms, p_room[i]);
        v_next[j] := v_next[j] + 1;
        k := k + 1;
        v_seq[i] := v_next[j];
        v_id[i] := v_ids[k];
        v_at[i] := v_now;
      END IF;
    END LOOP;
    INSERT INTO messages (room_id, seq, id, user_id, content, client_msg_id, created_at) OVERRIDING SYSTEM VALUE
    SELECT u.room_id, u.seq, u.id, u.user_id, u.content, u.cmid, v_now
    FROM unnest(p_room, v_seq, v_id, p_user, p_content, p_cmid, v_status) AS u (room_id, seq, id, user_id, content, cmid, st)
    WHERE u.st = 'ok';
  END IF;

  -- Repeats of a client_msg_id within this batch answer with the first one's row.
  FOR i IN 1 .. n LOOP
    IF v_status[i] = 'duplicate' AND v_id[i] IS NULL THEN
      v_id[i] := v_id[v_first[i]];
      v_seq[i] := v_seq[v_first[i]];
      v_at[i] := v_at[v_first[i]];
    END IF;
  END LOOP;

  RETURN QUERY
    SELECT u.ord::integer, u.st, u.id, u.seq, pgchat_iso(u.at)
    FROM unnest(v_status, v_id, v_seq, v_at) WITH ORDINALITY AS u (st, id, seq, at, ord);

  IF v_fresh = 0 THEN RETURN; END IF;

  -- Notifications, ascending seq per room; chunks stay below the 8000-byte limit.
  FOR r IN
    SELECT u.room_id, u.seq,
           pgchat_message_json(u.id, u.seq, u.room_id, u.user_id, u.username, u.content, v_now, u.cmid) AS body
    FROM unnest(p_room, v_seq, v_id, p_user, p_username, p_content, p_cmid, v_status)
      AS u (room_id, seq, id, user_id, username, content, cmid, st)
    WHERE u.st = 'ok'
    ORDER BY u.room_id, u.seq
  LOOP
    IF acc_kind <> '' AND (
         r.room_id <> acc_room OR r.seq <> acc_last + 1
         OR (acc_kind = 'm' AND (p_budget = 0 OR acc_bytes + octet_length(r.body) + 1 > p_budget))
         OR (acc_kind = 'd' AND p_budget > 0 AND octet_length(r.body) + 100 <= p_budget)) THEN
      IF acc_kind = 'm' THEN
        PERFORM pg_notify(p_channel, 'm|' || acc_room::text || '|' || acc_first || '|'
                                      || (acc_last - acc_first + 1) || acc_body);
      ELSE
        PERFORM pg_notify(p_channel, 'd|' || acc_room::text || '|' || acc_first || '|' || acc_last);
      END IF;
      acc_kind := '';
    END IF;
    IF acc_kind = '' THEN
      acc_room := r.room_id;
      acc_first := r.seq;
      acc_body := '';
      acc_bytes := 100; -- header
      acc_kind := CASE WHEN p_budget = 0 OR octet_length(r.body) + 100 > p_budget THEN 'd' ELSE 'm' END;
    END IF;
    acc_last := r.seq;
    IF acc_kind = 'm' THEN
      acc_body := acc_body || E'\n' || r.body;
      acc_bytes := acc_bytes + octet_length(r.body) + 1;
    END IF;
  END LOOP;
  IF acc_kind = 'm' THEN
    PERFORM pg_notify(p_channel, 'm|' || acc_room::text || '|' || acc_first || '|'
                                  || (acc_last - acc_first + 1) || acc_body);
  ELSIF acc_kind = 'd' THEN
    PERFORM pg_notify(p_channel, 'd|' || acc_room::text || '|' || acc_first || '|' || acc_last);
  END IF;
END
$$;
