-- Which prompt files wrote the plan (e.g. 'skeleton-v1+week-v1+plan-v1'), so prompt changes can be
-- compared on real plans.
ALTER TABLE workout_plans ADD COLUMN prompt_version text NOT NULL DEFAULT '';
