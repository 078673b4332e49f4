-- Entries by plan through one index, not two: each of a plan's 128 entries costs an insert in
-- every index of workout_entries, and the one dropped here cost ~0.45 ms of Postgres CPU per plan
-- (of 2.9 ms; bench.persister_rate, back to back).
--
-- plan_id (ours) and workout_plan_id (the original app's) hold the same plan in every row: 0008
-- filled ours from the original's rows, 0009's trigger keeps them equal on every insert and
-- update by anyone, and the persister writes both. Two indexes led by that one value: our unique
-- (plan_id, week, day_of_week, position), which our reads use, and 0010's (workout_plan_id), which
-- the original app's reads of a plan's entries and the ON DELETE CASCADE from workout_plans use.
-- One unique index led by workout_plan_id serves all three: the same uniqueness (on equal
-- columns), the original app's reads and the cascade by its leading column, and ours, which now
-- name workout_plan_id (services/gateway/plan_reads.py, services/persister/completion.py,
-- postgres.py, week_versions.py), in the order they read.

ALTER TABLE workout_entries ADD CONSTRAINT workout_entries_workout_plan_week_day_position_key
    UNIQUE (workout_plan_id, week, day_of_week, position);
ALTER TABLE workout_entries DROP CONSTRAINT IF EXISTS workout_entries_plan_id_week_day_position_key;
DROP INDEX IF EXISTS workout_entries_workout_plan;
