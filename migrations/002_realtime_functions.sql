-- The write path and the realtime bookkeeping as server-side functions, so each
-- flush is one round trip and the hot room row is locked for as short as possible.
--
-- Bus payloads (one channel, text, each < 8000 bytes):
--   m|<room>|<first_seq>|<count>\n<message json>\n...   messages inline, ascending seq
--   d|<room>|<from_seq>|<to_seq>                         doorbell: read the range from the table
--   p|<user>|<on|off>|<username>|<room>,<room>,...       presence, for rooms the user is in
--   t|<room>|<user>|<1|0>|<username>                     typing (not stored)
--   j|<room>|<user>|<username>  /  l|<room>|<user>|<username>   membership
--   x|<room>                                             room deleted

CREATE TYPE pgchat_post_row AS (
  ord        integer,
  status     text,
  id         bigint,
  seq        bigint,
  created_at text,
  room_id    uuid,
  body       text,
  fresh      boolean
);

-- Stores a batch of messages from many senders and rooms. Each room gets one
-- contiguous seq range in input order (so one sender's order is kept), one
-- NOTIFY per chunk. Items that fail (unknown room, not a member) do not fail the
-- batch; a client_msg_id seen before returns the stored message ('duplicate').
-- p_budget: max payload bytes for inline messages; 0 = doorbells only.
CREATE FUNCTION pgchat_post_messages(
  p_room uuid[], p_user uuid[], p_username text[], p_content text[], p_cmid text[],
  p_channel text, p_budget integer)
RETURNS TABLE (ord integer, status text, id bigint, seq bigint, created_at text)
LANGUAGE plpgsql AS $$
DECLARE
  v_rows pgchat_post_row[];
  r pgchat_post_row;
  acc_kind char := '';
  acc_room uuid;
  acc_first bigint;
  acc_last bigint;
  acc_body text := '';
  acc_bytes integer := 0;
  header_room text;
BEGIN
  -- Lock the rooms in one order so concurrent flushes of other workers cannot deadlock.
  PERFORM 1 FROM rooms WHERE rooms.id = ANY (p_room) ORDER BY rooms.id FOR UPDATE;

  WITH input AS (
    SELECT i.ord::integer AS ord, i.room_id, i.user_id, i.username, i.content, i.cmid
    FROM unnest(p_room, p_user, p_username, p_content, p_cmid)
      WITH ORDINALITY AS i (room_id, user_id, username, content, cmid, ord)
  ), classified AS (
    SELECT i.*, rm.id IS NOT NULL AS room_ok, mb.user_id IS NOT NULL AS member_ok,
           e.id AS dup_id, e.seq AS dup_seq, e.created_at AS dup_at,
           CASE WHEN i.cmid IS NULL THEN i.ord
                ELSE min(i.ord) OVER (PARTITION BY i.room_id, i.user_id, i.cmid) END AS first_ord
    FROM input i
    LEFT JOIN rooms rm ON rm.id = i.room_id
    LEFT JOIN room_members mb ON mb.room_id = i.room_id AND mb.user_id = i.user_id
    LEFT JOIN messages e ON i.cmid IS NOT NULL AND e.room_id = i.room_id
                        AND e.user_id = i.user_id AND e.client_msg_id = i.cmid
  ), fresh AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.room_id ORDER BY c.ord) AS n
    FROM classified c
    WHERE c.room_ok AND c.member_ok AND c.dup_id IS NULL AND c.first_ord = c.ord
  ), counts AS (
    SELECT f.room_id, count(*) AS k FROM fresh f GROUP BY f.room_id
  ), bumped AS (
    UPDATE rooms rm SET last_seq = rm.last_seq + c.k
    FROM counts c WHERE rm.id = c.room_id
    RETURNING rm.id AS room_id, rm.last_seq - c.k AS base
  ), inserted AS (
    INSERT INTO messages (room_id, seq, user_id, content, client_msg_id)
    SELECT f.room_id, b.base + f.n, f.user_id, f.content, f.cmid
    FROM fresh f JOIN bumped b ON b.room_id = f.room_id
    ORDER BY f.room_id, f.n
    RETURNING messages.*
  ), placed AS (
    SELECT f.ord, ins.id, ins.seq, ins.created_at, ins.room_id,
           pgchat_message_json(ins, f.username) AS body
    FROM inserted ins
    JOIN fresh f ON f.room_id = ins.room_id AND ins.user_id = f.user_id
    JOIN bumped b ON b.room_id = ins.room_id AND ins.seq = b.base + f.n
  )
  SELECT array_agg(ROW(
           c.ord,
           CASE WHEN NOT c.room_ok THEN 'room_not_found'
                WHEN NOT c.member_ok THEN 'not_a_member'
                WHEN c.dup_id IS NOT NULL OR c.first_ord <> c.ord THEN 'duplicate'
                ELSE 'ok' END,
           coalesce(c.dup_id, p.id),
           coalesce(c.dup_seq, p.seq),
           pgchat_iso(coalesce(c.dup_at, p.created_at)),
           c.room_id,
           p.body,
           p.id IS NOT NULL AND c.first_ord = c.ord
         )::pgchat_post_row ORDER BY c.ord)
    INTO v_rows
  FROM classified c
  LEFT JOIN placed p ON p.ord = c.first_ord;

  -- In-batch repeats of one client_msg_id got the first occurrence's row above.
  RETURN QUERY SELECT x.ord, x.status, x.id, x.seq, x.created_at FROM unnest(v_rows) x ORDER BY x.ord;

  -- Notifications, ascending seq per room; chunks stay below the 8000-byte limit.
  FOR r IN SELECT * FROM unnest(v_rows) x WHERE x.fresh ORDER BY x.room_id, x.seq LOOP
    IF acc_kind <> '' AND (
         r.room_id <> acc_room OR r.seq <> acc_last + 1
         OR (acc_kind = 'm' AND (p_budget = 0 OR acc_bytes + octet_length(r.body) + 1 > p_budget))
         OR (acc_kind = 'd' AND p_budget > 0 AND octet_length(r.body) + 100 <= p_budget)) THEN
      header_room := acc_room::text;
      IF acc_kind = 'm' THEN
        PERFORM pg_notify(p_channel, 'm|' || header_room || '|' || acc_first || '|'
                                      || (acc_last - acc_first + 1) || acc_body);
      ELSE
        PERFORM pg_notify(p_channel, 'd|' || header_room || '|' || acc_first || '|' || acc_last);
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

-- Announces a user's presence change to every room the user is in, in chunks.
CREATE FUNCTION pgchat_notify_presence(p_user uuid, p_online boolean, p_channel text, p_budget integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_name text;
  v_head text;
  v_list text := '';
  v_room uuid;
BEGIN
  SELECT username INTO v_name FROM users WHERE id = p_user;
  IF v_name IS NULL THEN RETURN; END IF;
  v_head := 'p|' || p_user::text || '|' || CASE WHEN p_online THEN 'on' ELSE 'off' END || '|' || v_name || '|';
  FOR v_room IN SELECT room_id FROM room_members WHERE user_id = p_user ORDER BY room_id LOOP
    IF octet_length(v_head) + octet_length(v_list) + 37 > p_budget THEN
      PERFORM pg_notify(p_channel, v_head || v_list);
      v_list := '';
    END IF;
    v_list := v_list || CASE WHEN v_list = '' THEN '' ELSE ',' END || v_room::text;
  END LOOP;
  IF v_list <> '' THEN
    PERFORM pg_notify(p_channel, v_head || v_list);
  END IF;
END
$$;

-- Applies one node's batch of presence transitions (users whose first socket on
-- this node opened, and whose last one closed) and announces users whose
-- global status changed. Per-user advisory locks, taken in one order, make the
-- "first anywhere" / "last anywhere" decision race-free across nodes.
CREATE FUNCTION pgchat_presence_apply(p_node uuid, p_online uuid[], p_offline uuid[],
                                      p_channel text, p_budget integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_user uuid;
  v_was boolean;
  v_is boolean;
BEGIN
  FOR v_user IN SELECT DISTINCT u FROM unnest(p_online || p_offline) u ORDER BY u LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(v_user::text, 7));
    SELECT EXISTS (SELECT 1 FROM presence WHERE user_id = v_user) INTO v_was;
    IF v_user = ANY (p_offline) THEN
      DELETE FROM presence WHERE node_id = p_node AND user_id = v_user;
    END IF;
    IF v_user = ANY (p_online) THEN
      INSERT INTO presence (node_id, user_id, sockets) VALUES (p_node, v_user, 1)
      ON CONFLICT (node_id, user_id) DO NOTHING;
    END IF;
    SELECT EXISTS (SELECT 1 FROM presence WHERE user_id = v_user) INTO v_is;
    IF v_was <> v_is THEN
      PERFORM pgchat_notify_presence(v_user, v_is, p_channel, p_budget);
    END IF;
  END LOOP;
END
$$;

-- Records that a node is alive. Returns true when the node row was missing
-- (first beat, reaped after a stall, or emptied by a crash restart): the caller
-- then re-registers its online users.
CREATE FUNCTION pgchat_node_beat(p_node uuid, p_host text, p_pid integer)
RETURNS boolean LANGUAGE sql AS $$
  INSERT INTO nodes (id, host, pid) VALUES (p_node, p_host, p_pid)
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
  RETURNING (xmax = 0)
$$;

-- Removes nodes that stopped beating and announces their users offline where
-- they have no socket left anywhere. Safe to run from every node at once.
CREATE FUNCTION pgchat_reap_nodes(p_timeout interval, p_channel text, p_budget integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_users uuid[];
  v_user uuid;
  v_dead integer;
BEGIN
  WITH dead AS (
    DELETE FROM nodes WHERE heartbeat_at < now() - p_timeout RETURNING id
  ), gone AS (
    DELETE FROM presence p USING dead WHERE p.node_id = dead.id RETURNING p.user_id
  )
  SELECT array_agg(DISTINCT gone.user_id), (SELECT count(*) FROM dead) INTO v_users, v_dead FROM gone;
  IF v_users IS NULL THEN
    RETURN coalesce(v_dead, 0);
  END IF;
  FOR v_user IN SELECT u FROM unnest(v_users) u ORDER BY u LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(v_user::text, 7));
    IF NOT EXISTS (SELECT 1 FROM presence WHERE user_id = v_user) THEN
      PERFORM pgchat_notify_presence(v_user, false, p_channel, p_budget);
    END IF;
  END LOOP;
  RETURN v_dead;
END
$$;
