-- Each plan's quality scores (services/planner/scores.py: a share in [0, 1] per dimension, and
-- "overall"), beside the prompt version and model it was written with (0007), so plans written by
-- different prompts or models can be compared on measured quality. NULL for plans stored before.
ALTER TABLE workout_plans ADD COLUMN IF NOT EXISTS quality jsonb;
