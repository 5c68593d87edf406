-- The commit notification names the pool that wrote (its connections set fieldtrail.writer,
-- a random id per pool): a process already wakes its own readers when its append returns,
-- and its LISTEN connection skips the notifications of its own commits (before this, each of
-- them woke the projector and the relay twice, and the second wake read an empty page).
-- A connection without the setting (psql, another tool) sends '' and wakes everyone.
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fieldtrail_events', coalesce(current_setting('fieldtrail.writer', true), ''));
    RETURN NULL;
END
$$;
