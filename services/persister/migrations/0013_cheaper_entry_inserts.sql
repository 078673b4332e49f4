-- Entries cost less to insert; the persister COPYs 128 per plan, and per row work is most of a
-- plan's database time.
--
-- 1. 0009's entries trigger, on INSERT, only for rows that need it. The persister inserts entries
--    with both sides of every pair already equal and the exercise id, name and date set, for
--    which the trigger function changes nothing; calling it anyway cost a PL/pgSQL call per row.
--    The WHEN clause is the function's own no-op condition, evaluated without calling it: any
--    pair unequal or missing, or anything the function would look up (exercise id, key or name,
--    date), and the function runs as before. UPDATEs always run it.
-- 2. One foreign key to the exercise, not two: exercise_id's (the original app's) stays, and
--    exercise_key's goes with the index that only served it. Both columns name the same row: the
--    persister writes both from the catalogue row it read in the same transaction, and the
--    trigger derives the key from the id for anyone else; exercises are never deleted while
--    entries use them (exercise_id's key refuses it) and a key never changes. Every read of
--    entries by exercise key is scoped to a plan (the plan's unique index serves it).

DROP TRIGGER IF EXISTS same_as_original ON workout_entries;
DROP TRIGGER IF EXISTS same_as_original_insert ON workout_entries;
DROP TRIGGER IF EXISTS same_as_original_update ON workout_entries;

CREATE TRIGGER same_as_original_insert BEFORE INSERT ON workout_entries
    FOR EACH ROW
    WHEN (
        NEW.plan_id IS NULL OR NEW.workout_plan_id IS DISTINCT FROM NEW.plan_id
        OR NEW.week IS NULL OR NEW.week_number IS DISTINCT FROM NEW.week
        OR NEW.day_of_week IS NULL
        OR NEW.day IS DISTINCT FROM (ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday',
                                           'sunday']::weekday[])[NEW.day_of_week]
        OR (NEW.day_focus IS NULL) <> (NEW.day_name IS NULL)
        OR NEW.exercise_id IS NULL OR NEW.exercise_key IS NULL OR NEW.exercise_name IS NULL
        OR NEW.date IS NULL
    )
    EXECUTE FUNCTION workout_entries_same_as_original();

CREATE TRIGGER same_as_original_update BEFORE UPDATE ON workout_entries
    FOR EACH ROW EXECUTE FUNCTION workout_entries_same_as_original();

ALTER TABLE workout_entries DROP CONSTRAINT IF EXISTS workout_entries_exercise_key_fkey;
DROP INDEX IF EXISTS workout_entries_exercise;
