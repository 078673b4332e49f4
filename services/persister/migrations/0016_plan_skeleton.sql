-- The skeleton each plan was written against (contracts.plan.PlanSkeleton as JSON: the split, the
-- exercise selection per block, each week's theme and deload, the progression), so one week can
-- later be written again against it. NULL for plans written in one call, and for plans stored before.
ALTER TABLE workout_plans ADD COLUMN IF NOT EXISTS skeleton jsonb;
