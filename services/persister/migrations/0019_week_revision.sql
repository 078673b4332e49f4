-- The plan's revision a week written again was checked within (the newest stored week version's id
-- when the gateway read the plan; 0: none). The swap refuses a week whose plan has been revised
-- since (another week written again between this one's read and its accept), rather than put in a
-- week checked against weeks that are no longer the plan's.
ALTER TABLE workout_week_versions ADD COLUMN IF NOT EXISTS plan_revision bigint NOT NULL DEFAULT 0;
